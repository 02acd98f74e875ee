"""Saving a model object as a package folder, and loading one back with its digests checked.

A package is the flavor's files, an optional ``input_example.json``, and the ``MLmodel``
manifest listing every file's SHA-256. :func:`load_model` refuses a package whose files changed
and returns a :class:`LoadedModel` whose ``predict`` enforces the signature first.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.clock import now_ms
from shipyard.errors import InvalidInput
from shipyard.models.flavors import flavor_for, flavor_imports, get_flavor
from shipyard.models.manifest import ModelManifest, digest_folder, verify_folder
from shipyard.models.mlflow_format import is_mlflow_package
from shipyard.models.mlflow_format import open_model as open_mlflow_model

INPUT_EXAMPLE = "input_example.json"


def _example_to_json(example: Any) -> Any:
    """A small input example as JSON (records for tables, nested lists for arrays)."""
    if hasattr(example, "to_dict") and hasattr(example, "columns"):
        return {"format": "records", "data": json.loads(example.to_json(orient="records"))}
    if hasattr(example, "tolist"):
        return {"format": "array", "data": example.tolist()}
    return {"format": "raw", "data": example}


def save_model(
    model: Any,
    path: str | Path,
    *,
    flavor: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    code_paths: list[str | Path] | None = None,
    artifacts: dict[str, str | Path] | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    flavor_options: dict[str, Any] | None = None,
) -> ModelManifest:
    """Write ``model`` as a package into the empty or new folder ``path``.

    The flavor is detected from the object unless named; the signature is inferred from
    ``input_example`` (and the model's prediction on it) unless given. ``flavor_options`` go to
    the flavor's ``save`` (the torch flavor's ``init_kwargs``, for one).
    """
    folder = Path(path)
    if folder.exists() and any(folder.iterdir()):
        raise InvalidInput(f"cannot save a model into {folder}: the folder is not empty")
    chosen = get_flavor(flavor) if flavor else flavor_for(model)
    if flavor and not chosen.accepts(model):
        raise InvalidInput(f"the {chosen.name} flavor cannot save a {type(model).__qualname__}")
    clash = sorted({"input_example", "code_paths", "artifacts"} & set(flavor_options or {}))
    if clash:
        raise InvalidInput(f"flavor_options cannot set {', '.join(clash)}: pass them as arguments")
    folder.mkdir(parents=True, exist_ok=True)
    with flavor_imports(chosen.name, "saving"):
        options, pickle_based, requirements = chosen.save(
            model, folder, input_example=input_example, code_paths=code_paths, artifacts=artifacts,
            **(flavor_options or {}))
        if signature is None and input_example is not None:
            from shipyard.models.signature import infer_signature

            prediction = chosen.predictor(chosen.load(folder, options)).predict(input_example)
            signature = infer_signature(input_example, prediction)
    if input_example is not None:
        (folder / INPUT_EXAMPLE).write_text(json.dumps(_example_to_json(input_example), default=str))
    manifest = ModelManifest(
        flavor=chosen.name, flavor_options=options, pickle_based=pickle_based,
        python_version=platform.python_version(), requirements=requirements,
        files=digest_folder(folder), signature=signature.to_dict() if signature is not None else None,
        input_example=INPUT_EXAMPLE if input_example is not None else None,
        created=now_ms(), run_id=run_id, artifact_path=artifact_path)
    manifest.write(folder)
    return manifest


@dataclass
class LoadedModel:
    """A loaded model of any flavor: ``predict(data)`` checks ``data`` against the signature
    (safe casts applied, a wrong column or type is an error naming it) and calls the model."""

    manifest: ModelManifest
    model: Any
    _predictor: Any
    _input_schema: Any = None

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    @property
    def pickle_based(self) -> bool:
        return self.manifest.pickle_based

    def predict(self, data: Any) -> Any:
        if self._input_schema is not None:
            from shipyard.models.signature import enforce

            data = enforce(self._input_schema, data)
        return self._predictor.predict(data)

    def predict_conformed(self, data: Any) -> Any:
        """``predict`` without the signature check, for input that has passed it already (the
        serving app checks each request before batching, so checking a batch again is waste). A
        flavor may predict such input a faster way (see ``models/flavors/sklearn_arrays.py``)."""
        conformed = getattr(self._predictor, "predict_conformed", None)
        return conformed(data) if conformed is not None else self._predictor.predict(data)

    def unwrap(self) -> Any:
        """The framework object itself (an sklearn estimator, a PythonModel...)."""
        return self.model


def load_model_folder(path: str | Path) -> LoadedModel:
    """Load the package in ``path``: every file's digest is checked first. An MLflow-format
    folder loads too (see :mod:`shipyard.models.mlflow_format`)."""
    folder = Path(path)
    manifest = ModelManifest.read(folder)
    model, predictor = _open(folder, manifest)
    schema = None
    if manifest.signature is not None:
        from shipyard.models.signature import Signature

        schema = Signature.from_dict(manifest.signature).inputs
    return LoadedModel(manifest, model, predictor, schema)


def _open(folder: Path, manifest: ModelManifest) -> tuple[Any, Any]:
    """``(framework object, predictor)`` of the package."""
    if is_mlflow_package(manifest):
        # Its digests were just computed from this folder (MLflow records none), so checking
        # them again would only read every file twice.
        return open_mlflow_model(folder, manifest)
    verify_folder(folder, manifest)
    flavor = get_flavor(manifest.flavor)
    with flavor_imports(flavor.name, "loading"):
        model = flavor.load(folder, manifest.flavor_options)
        return model, flavor.predictor(model)
