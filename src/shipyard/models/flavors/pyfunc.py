"""Any Python model: a :class:`PythonModel` subclass with ``load_context`` and ``predict``.

The instance is pickled (the package is marked ``pickle_based``); the folders and files in
``code_paths`` are copied into the package and put on ``sys.path`` before it is unpickled,
so the class needs nothing installed beyond the recorded requirements. ``artifacts`` (name ->
local file or folder) are copied too and handed to ``load_context``.
"""

from __future__ import annotations

import pickle
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.models.flavors import distributions_of

MODEL_FILE = "python_model.pkl"
CODE_DIR = "code"
ARTIFACTS_DIR = "artifacts"


@dataclass(frozen=True)
class ModelContext:
    """What ``load_context`` receives: the stored artifacts, by name, as local paths."""

    artifacts: dict[str, Path]


class PythonModel:
    """Subclass this to package any model: override ``predict`` (and ``load_context`` to set up
    from the stored artifacts once, after loading)."""

    def load_context(self, context: ModelContext) -> None:
        """Called once after loading, with the model's artifacts."""

    def predict(self, context: ModelContext, model_input: Any) -> Any:
        raise NotImplementedError("a PythonModel must implement predict(context, model_input)")


class _Bound:
    def __init__(self, model: PythonModel, context: ModelContext) -> None:
        self.model = model
        self.context = context

    def predict(self, data: Any) -> Any:
        return self.model.predict(self.context, data)


class PyfuncFlavor:
    name = "pyfunc"

    def accepts(self, model: Any) -> bool:
        return isinstance(model, PythonModel)

    def save(self, model: Any, folder: Path, **options: Any) -> tuple[dict[str, Any], bool, list[str]]:
        code = []
        for source in map(Path, options.get("code_paths") or []):
            if not source.exists():
                raise InvalidInput(f"code path {str(source)!r} does not exist")
            target = folder / CODE_DIR / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
            code.append(source.name)
        artifacts = {}
        for name, source in (options.get("artifacts") or {}).items():
            source = Path(source)
            if not source.exists():
                raise InvalidInput(f"model artifact {name!r}: {str(source)!r} does not exist")
            target = folder / ARTIFACTS_DIR / name
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
            artifacts[name] = f"{ARTIFACTS_DIR}/{name}"
        try:
            (folder / MODEL_FILE).write_bytes(pickle.dumps(model))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"cannot pickle the {type(model).__qualname__} instance: {exc}; define the "
                               "class at module level (in a file passed as code_paths)") from None
        modules = {c.__module__.split(".")[0] for c in type(model).__mro__} - {"builtins", "shipyard", "__main__"}
        return {"file": MODEL_FILE, "code": code, "artifacts": artifacts}, True, distributions_of(modules)

    def load(self, folder: Path, options: dict[str, Any]) -> Any:
        if options.get("code"):
            code_dir = str(folder / CODE_DIR)
            if code_dir not in sys.path:
                sys.path.insert(0, code_dir)
        model = pickle.loads((folder / options["file"]).read_bytes())
        context = ModelContext({name: folder / rel for name, rel in options.get("artifacts", {}).items()})
        model.load_context(context)
        return _Bound(model, context)

    def predictor(self, model: Any) -> Any:
        return model
