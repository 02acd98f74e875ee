"""``shipyard init NAME``: scaffold a project (pipeline, tests, CI workflow, README) that passes its tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.tree import Tree

from shipyard.cli import render


def init(
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                        help="The project's name (its folder; its package is NAME with _ for -).")],
    directory: Annotated[Path, typer.Option("--dir", "-d", metavar="PATH", file_okay=False,
                                            help="Where to create the NAME folder.")] = Path("."),
) -> None:
    """Create a project: a training pipeline with a quality gate, its tests, a CI workflow, a README.

    Examples:
      shipyard init churn-model
      shipyard init churn-model --dir ~/work && cd ~/work/churn-model && pip install -e ".[test]" && pytest
    """
    from shipyard.pipelines.scaffold import init_project

    project = init_project(name, directory)
    tree = Tree(f"{project.root}/", guide_style="dim")
    for path in project.files:
        tree.add(str(path.relative_to(project.root)))
    render.show(tree)
    render.info(f"Next:\n  cd {project.root}\n  pip install -e \".[test]\" && pytest\n"
                f"  shipyard pipeline run {project.package}.pipeline:training")
