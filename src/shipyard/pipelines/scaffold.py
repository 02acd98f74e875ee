"""``shipyard init NAME``: a small working project from the template in ``project_template/``.

The project has a pipeline (with a quality gate), its tests, a CI workflow that runs the pipeline and
promotes the model it registers, and a README; its tests pass right after generation.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from shipyard.errors import AlreadyExists, InvalidInput

__all__ = ["Project", "init_project"]

# project file -> template file; the package folder is named after the project
FILES = {
    "README.md": "README.md.tmpl",
    "pyproject.toml": "pyproject.toml.tmpl",
    ".gitignore": "gitignore.tmpl",
    ".github/workflows/ci.yml": "ci.yml.tmpl",
    "src/{package}/__init__.py": "init.py.tmpl",
    "src/{package}/pipeline.py": "pipeline.py.tmpl",
    "tests/test_pipeline.py": "test_pipeline.py.tmpl",
}


@dataclass(frozen=True)
class Project:
    name: str
    package: str
    root: Path
    files: tuple[Path, ...]


def _package_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", name):
        raise InvalidInput(f"project name {name!r} is not valid: start with a letter, then letters, digits, '-' or "
                           "'_' (at most 64), e.g. churn-model")
    package = name.lower().replace("-", "_")
    if keyword.iskeyword(package) or package in sys.stdlib_module_names or package in ("shipyard", "tests", "test"):
        raise InvalidInput(f"project name {name!r} would make a package {package!r} that shadows a Python module; "
                           "choose another name")
    if importlib.util.find_spec(package) is not None:
        raise InvalidInput(f"project name {name!r} would make a package {package!r}, which is already installed "
                           "here; choose another name")
    return package


def _version() -> str:
    from shipyard import __version__

    release = re.match(r"\d+(\.\d+)*", __version__)
    return release.group(0) if release else "0"


def init_project(name: str, parent: Path | str = ".") -> Project:
    """Write the project ``name`` into ``parent/name``. Raises ``InvalidInput`` for a name that cannot be a
    package, and ``AlreadyExists`` when that folder exists and is not empty (nothing is overwritten)."""
    package = _package_name(name)
    root = Path(parent) / name
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise AlreadyExists(f"{root} already exists and is not empty; choose another name or folder (nothing was "
                            "written)", path=str(root))
    templates = resources.files("shipyard.pipelines") / "project_template"
    rendered = {}
    for target, template in FILES.items():
        text = (templates / template).read_text(encoding="utf-8")
        text = text.replace("__NAME__", name).replace("__PACKAGE__", package)
        rendered[root / target.format(package=package)] = text.replace("__SHIPYARD_VERSION__", _version())
    for path, text in rendered.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Project(name, package, root, tuple(rendered))
