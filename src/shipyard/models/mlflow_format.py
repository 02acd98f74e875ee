"""MLflow-format model folders (what the ``mlflow`` client's ``save_model`` and ``log_model`` write),
read as Shipyard packages.

MLflow's ``MLmodel`` has a top-level ``flavors`` mapping where Shipyard's has ``flavor``, keeps the
requirements in ``requirements.txt`` and ``python_env.yaml``, and lists no file digests.
:func:`manifest_fields` converts it into the fields of a :class:`~shipyard.models.manifest.ModelManifest`
(called by ``ModelManifest.parse``, so registration, cards, serving and evaluation see one kind of
object; this module imports the manifest only for its annotations), and
:func:`open_model` loads the folder for ``load_model_folder``:

- the ``sklearn`` flavor loads natively, through Shipyard's own sklearn flavor (no mlflow import):
  skops with only the types the ``MLmodel`` trusts, or cloudpickle/pickle, marked pickle-based;
- otherwise ``python_function`` (another ``loader_module``, or a cloudpickled ``PythonModel``) is
  loaded by ``mlflow.pyfunc.load_model``, so mlflow must be installed; marked pickle-based unless its
  data file is in a format that cannot run code.

The signature is converted when every column maps onto Shipyard's types; otherwise the model loads
without one rather than being refused.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.models.signature import ColumnSpec, Schema, Signature

if TYPE_CHECKING:
    from shipyard.models.manifest import ModelManifest, PackageFiles

__all__ = ["MLFLOW_FORMAT", "is_mlflow_manifest", "is_mlflow_package", "manifest_fields", "open_model",
           "signature_from_mlflow"]

MLFLOW_FORMAT = "mlflow"  # ModelManifest.extra["format"] of a converted manifest
_SKLEARN, _PYFUNC = "sklearn", "python_function"
_SKLEARN_FORMATS = ("skops", "cloudpickle", "pickle")
# Loader modules whose files load without unpickling, unless the data file itself is a pickle
# (MLflow's LightGBM flavor pickles scikit-learn-API models as model.pkl, for one).
_CODE_FREE_LOADERS = frozenset({"mlflow.onnx", "mlflow.xgboost", "mlflow.lightgbm"})
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".cloudpickle", ".pt", ".pth")
# MLflow column types -> Shipyard's (signature.DTYPES); array, object, map and any have no equivalent.
_COLUMN_TYPES = {"boolean": "bool", "integer": "int32", "long": "int64", "float": "float32",
                 "double": "float64", "string": "string", "binary": "binary", "datetime": "datetime"}
_TENSOR_TYPES = frozenset({"bool", "int32", "int64", "float32", "float64"})


def is_mlflow_manifest(doc: object) -> bool:
    """Whether a parsed ``MLmodel`` document is MLflow's format (a mapping with ``flavors``)."""
    return isinstance(doc, Mapping) and "flavors" in doc


def is_mlflow_package(manifest: ModelManifest) -> bool:
    """Whether ``manifest`` was converted from an MLflow ``MLmodel`` by :func:`manifest_fields`."""
    return manifest.extra.get("format") == MLFLOW_FORMAT


# -- the manifest -------------------------------------------------------------------------------------

def manifest_fields(doc: Mapping[str, Any], where: str, files: PackageFiles | None = None) -> dict[str, Any]:
    """The Shipyard manifest fields of an MLflow ``MLmodel`` document; ``files`` (when given) supply
    the requirements and the digests. ``InvalidInput`` naming the flavors found when none can be loaded."""
    flavors = doc["flavors"]
    if not isinstance(flavors, Mapping):
        raise InvalidInput(f"{where} is not a valid MLflow model manifest: 'flavors' is not a mapping")
    flavor, options, pickle_based = _choose_flavor(flavors, where)
    return {
        "flavor": flavor, "flavor_options": options, "pickle_based": pickle_based,
        "python_version": _python_version(flavors, files), "requirements": _requirements(files),
        # MLflow records no digests. These are of the files as they are now; a folder downloaded from
        # the artifact store had every byte checked against the digest stored at upload.
        "files": files.digests() if files is not None else {},
        "signature": signature_from_mlflow(doc.get("signature")),
        # MLflow's input_example.json has its own layout, not Shipyard's; it stays in the folder.
        "input_example": None, "created": _created(doc.get("utc_time_created")),
        "run_id": doc.get("run_id") if isinstance(doc.get("run_id"), str) else None,
        "artifact_path": doc.get("artifact_path") if isinstance(doc.get("artifact_path"), str) else None,
        "extra": {"format": MLFLOW_FORMAT, "mlflow_version": str(doc.get("mlflow_version") or ""),
               "mlflow_flavors": sorted(map(str, flavors))}}


def _choose_flavor(flavors: Mapping[str, Any], where: str) -> tuple[str, dict[str, Any], bool]:
    """``(flavor, flavor options, pickle-based)``: sklearn natively when present, else pyfunc."""
    pyfunc = flavors.get(_PYFUNC)
    pyfunc = pyfunc if isinstance(pyfunc, Mapping) else {}
    if isinstance(flavors.get(_SKLEARN), Mapping):
        return ("sklearn", *_sklearn_options(flavors[_SKLEARN], pyfunc, where))
    if pyfunc:
        return ("pyfunc", *_pyfunc_options(pyfunc))
    found = ", ".join(sorted(map(str, flavors))) or "none"
    raise InvalidInput(f"{where} is an MLflow model with no flavor Shipyard can load (found: {found}); "
                       f"Shipyard loads '{_SKLEARN}' natively and '{_PYFUNC}' with mlflow installed",
                       flavors=sorted(map(str, flavors)))


def _sklearn_options(conf: Mapping[str, Any], pyfunc: Mapping[str, Any],
                     where: str) -> tuple[dict[str, Any], bool]:
    """Options for Shipyard's sklearn flavor (``format``, ``file``, ``trusted``) plus what only
    this module reads (``predict_fn``, ``code``)."""
    fmt = conf.get("serialization_format", "pickle")  # MLflow's own default for manifests without one
    file = conf.get("pickled_model")
    if fmt not in _SKLEARN_FORMATS or not isinstance(file, str):
        raise InvalidInput(f"{where}: cannot load its sklearn flavor (serialization_format {fmt!r}, "
                           f"pickled_model {file!r}); expected one of {', '.join(_SKLEARN_FORMATS)} and a file")
    trusted = [str(t) for t in conf.get("skops_trusted_types") or []]
    options = {"format": fmt, "file": file, "trusted": trusted,
               "predict_fn": str(pyfunc.get("predict_fn") or "predict"), "code": conf.get("code")}
    # Types the MLmodel itself declares trusted let skops build (and so run) anything it names: an
    # edited MLmodel could trust any callable, so such a package is labelled like a pickle.
    return options, fmt != "skops" or bool(trusted)


def _pyfunc_options(conf: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    loader = str(conf.get("loader_module") or "")
    data = conf.get("model_path") or conf.get("data")
    options = {"loader_module": loader, "python_model": conf.get("python_model"), "data": data}
    code_free = (loader in _CODE_FREE_LOADERS and isinstance(data, str)
                 and not data.lower().endswith(_PICKLE_SUFFIXES) and not conf.get("python_model"))
    return options, not code_free


def _python_version(flavors: Mapping[str, Any], files: PackageFiles | None) -> str:
    """The flavor's ``python_version``, else ``python_env.yaml``'s ``python``, else ``""``."""
    for conf in flavors.values():
        if isinstance(conf, Mapping) and conf.get("python_version"):
            return str(conf["python_version"])
    text = files.read_text("python_env.yaml") if files is not None else None
    if text:
        import yaml

        try:
            env = yaml.safe_load(text)
        except yaml.YAMLError:  # an unreadable environment file only loses the version
            return ""
        if isinstance(env, Mapping) and env.get("python"):
            return str(env["python"])
    return ""


def _requirements(files: PackageFiles | None) -> list[str]:
    """``requirements.txt``'s requirement lines (pip options such as ``-r``/``-c`` and comments left out)."""
    text = files.read_text("requirements.txt") if files is not None else None
    lines = (line.split(" #")[0].strip() for line in (text or "").splitlines())
    return [line for line in lines if line and not line.startswith(("#", "-"))]


def _created(value: object) -> int:
    """MLflow's ``utc_time_created`` (``2026-01-31 12:00:00.123456``) in epoch milliseconds, 0 if unreadable."""
    try:
        return int(datetime.fromisoformat(str(value)).replace(tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        return 0


# -- the signature ------------------------------------------------------------------------------------

def signature_from_mlflow(raw: object) -> dict[str, Any] | None:
    """Shipyard's signature (as ``Signature.to_dict``) of MLflow's ``signature`` entry, or None when
    its inputs do not map exactly (an output spec that does not map is left out alone)."""
    if not isinstance(raw, Mapping):
        return None
    inputs = _schema_from_mlflow(raw.get("inputs"))
    if inputs is None:
        return None
    return Signature(inputs, _schema_from_mlflow(raw.get("outputs"))).to_dict()


def _schema_from_mlflow(text: object) -> Schema | None:
    """Shipyard's schema of MLflow's JSON list of specs, or None when there is no exact equivalent."""
    try:
        specs = json.loads(text) if isinstance(text, str) else None
        if not isinstance(specs, list) or not specs:
            return None
        if all(isinstance(s, Mapping) and s.get("type") == "tensor" for s in specs):
            return _tensor_schema(specs)
        columns = tuple(ColumnSpec(s["name"], _COLUMN_TYPES[s["type"]], optional=s.get("required") is False)
                        for s in specs)
        return Schema(columns, "columns")
    except (ValueError, KeyError, TypeError, AttributeError, InvalidInput):  # no exact mapping: no signature
        return None


def _tensor_schema(specs: list[Any]) -> Schema | None:
    # Named tensors (a dict of arrays) have no equivalent: Shipyard's tensor schema is one plain array.
    if len(specs) != 1 or specs[0].get("name") is not None:
        return None
    spec = specs[0]["tensor-spec"]
    if spec["dtype"] not in _TENSOR_TYPES:
        return None
    return Schema((ColumnSpec(None, spec["dtype"], tuple(spec["shape"])),), "tensor")


# -- loading ------------------------------------------------------------------------------------------

def open_model(folder: Path, manifest: ModelManifest) -> tuple[Any, Any]:
    """``(framework object, predictor)`` of the MLflow-format package in ``folder``."""
    if manifest.flavor == "sklearn":
        return _open_sklearn(folder, manifest.flavor_options)
    return _open_pyfunc(folder, manifest.flavor_options)


class _Method:
    """Calls the estimator method MLflow's ``predict_fn`` names (``predict_proba``...)."""

    def __init__(self, model: Any, name: str) -> None:
        self._method = getattr(model, name)

    def predict(self, data: Any) -> Any:
        return self._method(data)


def _open_sklearn(folder: Path, options: dict[str, Any]) -> tuple[Any, Any]:
    from shipyard.models.flavors import get_flavor

    if options.get("code"):  # code_paths saved with the model, for pickled custom estimators
        code_dir = str(folder / str(options["code"]))
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
    flavor = get_flavor("sklearn")
    model = flavor.load(folder, options)
    name = options.get("predict_fn") or "predict"
    if not callable(getattr(model, name, None)):
        raise InvalidInput(f"the MLflow model in {folder} names predict_fn {name!r}, which the "
                           f"{type(model).__qualname__} does not have")
    return model, flavor.predictor(model) if name == "predict" else _Method(model, name)


def _open_pyfunc(folder: Path, options: dict[str, Any]) -> tuple[Any, Any]:
    what = "a custom python_model" if options.get("python_model") else f"loader_module {options['loader_module']!r}"
    try:
        import mlflow.pyfunc
        from mlflow.exceptions import MlflowException
    except ImportError as exc:
        raise InvalidInput(f"the MLflow model in {folder} ({what}) can only be loaded by MLflow, which is not "
                           f"installed ({exc}); pip install mlflow-skinny to load this model") from None
    try:
        pyfunc = mlflow.pyfunc.load_model(str(folder))
    except MlflowException as exc:
        raise InvalidInput(f"MLflow could not load the model in {folder} ({what}): {exc.message}") from None
    return _raw_model(pyfunc), pyfunc


def _raw_model(pyfunc: Any) -> Any:
    """What ``LoadedModel.unwrap`` gives: the ``PythonModel`` instance, else the loader module's own
    object, else MLflow's ``PyFuncModel`` when its loader exposes none."""
    from mlflow.exceptions import MlflowException

    try:
        return pyfunc.unwrap_python_model()
    except MlflowException:
        pass
    try:
        return pyfunc.get_raw_model()
    except NotImplementedError:
        return pyfunc
