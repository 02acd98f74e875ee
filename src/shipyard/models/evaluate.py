"""Evaluating a model on labelled data, recorded as a run of its own.

:func:`evaluate` loads a model by URI, predicts on a table whose ``target`` column holds the true
labels, computes metrics with scikit-learn (vectorised over the whole table) and logs the
evaluation as a new run: metrics, a plot, the dataset's name and digest, and tags pointing back at
the model. When the URI names a registered version (``models:/...``), the version is tagged with
the evaluation run's id (:data:`EVALUATION_RUN_TAG`), so quality gates and model cards find its
latest evaluation.

Metrics, by model type:

- classifier: ``accuracy``; for two classes ``precision``, ``recall`` and ``f1`` of the positive
  class (the greater label in sorted order: ``1``, ``True``, ``"yes"`` over ``"no"``...); for
  more, their macro averages ``precision_macro``, ``recall_macro``, ``f1_macro``. When the model
  object has ``predict_proba`` and ``classes_`` (scikit-learn classifiers): ``log_loss`` and
  ``roc_auc`` (two classes) or ``roc_auc_ovr`` (more: one-vs-rest, macro average); ROC AUC only
  when every class occurs in the labels, log loss only when every label is a class of the model.
- regressor: ``mae``, ``rmse`` and ``r2`` (``r2`` needs at least two rows).

Plots are drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas: no screen and no
``pyplot`` state are involved.

Domain code: :func:`evaluate` takes the :class:`~shipyard.models.registry.RegistryService` of the
acting principal (the evaluation run's user, and who is recorded tagging the version), or a
``Client``, the SDK's spelling, whose registry is used (:func:`~shipyard.models.registry.as_registry`).
The run is written straight to the registry's store and artifact store.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.clock import now_ms
from shipyard.entities import DEFAULT_EXPERIMENT_ID, Metric, RunStatus
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.models.registry import HasRegistry, RegistryService, as_registry
from shipyard.tracking import validation as rules
from shipyard.tracking.datasets import DatasetService
from shipyard.tracking.service import TrackingService

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.entities import ModelVersion

__all__ = [
    "CONFUSION_MATRIX_ARTIFACT",
    "EVALUATION_RUN_TAG",
    "MODEL_TYPES",
    "MODEL_URI_TAG",
    "MODEL_VERSION_TAG",
    "RESIDUALS_ARTIFACT",
    "SOURCE_RUN_TAG",
    "Evaluation",
    "dataset_digest",
    "evaluate",
]

MODEL_TYPES = ("classifier", "regressor")
# Tags of the evaluation run.
MODEL_URI_TAG = "shipyard.evaluation.model_uri"
MODEL_VERSION_TAG = "shipyard.evaluation.model_version"
SOURCE_RUN_TAG = "shipyard.evaluation.source_run"
# Tag of the evaluated model version: the id of its latest evaluation run.
EVALUATION_RUN_TAG = "shipyard.evaluation_run"
CONFUSION_MATRIX_ARTIFACT = "evaluation/confusion_matrix.png"
RESIDUALS_ARTIFACT = "evaluation/residuals.png"
# An integer target with at most this many distinct values is taken for class labels.
MAX_INFERRED_CLASSES = 20
# The residual plot shows a fixed random sample of this many rows at most.
MAX_PLOTTED_POINTS = 10_000
# The confusion matrix writes its counts in the cells up to this many classes.
MAX_ANNOTATED_CLASSES = 20
_READERS = {".parquet": "read_parquet", ".pq": "read_parquet", ".csv": "read_csv"}


@dataclass(frozen=True)
class Evaluation:
    """The outcome of :func:`evaluate`: the run that records it, and what it logged."""

    run_id: str
    model_uri: str
    model_type: str
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)


def evaluate(
    registry: RegistryService | HasRegistry,
    model_uri: str,
    data: pd.DataFrame | str | os.PathLike[str],
    *,
    target: str,
    model_type: str | None = None,
    experiment_id: str | None = None,
    dataset_name: str | None = None,
) -> Evaluation:
    """Evaluate the model at ``model_uri`` on ``data`` and log the evaluation as a new run.

    ``data`` is a pandas DataFrame or the path of a ``.parquet``/``.pq`` or ``.csv`` file; its
    ``target`` column holds the true labels and is dropped before ``predict``. ``model_uri`` is
    anything :meth:`RegistryService.load_model` takes (``models:/name/3``, ``models:/name@alias``,
    ``models:/name/latest``, ``runs:/<id>/model``, a local package folder).

    ``model_type`` is ``"classifier"`` or ``"regressor"``. When ``None`` it is inferred: a
    classifier when the model object has ``predict_proba``, or when the target is not numeric
    (bool, string, categorical), or is an integer column with at most
    :data:`MAX_INFERRED_CLASSES` distinct values; otherwise a regressor.

    The run, named ``evaluate <model_uri>``, goes to ``experiment_id``, else to the experiment
    of the model's source run, else (a local package from elsewhere) to the default experiment.
    It gets the tags :data:`MODEL_URI_TAG` (the URI as given), :data:`MODEL_VERSION_TAG`
    (``name/version`` for a ``models:/`` URI, alias or ``latest`` resolved to the number) and
    :data:`SOURCE_RUN_TAG` (the run that logged the model); the params ``dataset``
    (``dataset_name``, else the file name, else ``"dataframe"``), ``dataset_digest`` (see
    :func:`dataset_digest`), ``rows``, ``target`` and ``model_type``; the metrics (module
    docstring); and a plot: :data:`CONFUSION_MATRIX_ARTIFACT` or :data:`RESIDUALS_ARTIFACT`.
    For a registered version, :data:`EVALUATION_RUN_TAG` is then set on the version. A data
    file, or a DataFrame given ``dataset_name``, is also logged as a dataset version the run
    read (context ``evaluation``), so the lineage graph links the evaluation to its data.

    Raises ``InvalidInput`` for bad data (unreadable or unsupported file, no rows, no
    ``target`` column, missing labels, predictions that do not fit the labels) and an unknown
    ``model_type``, before any run is created; ``NotFound`` for an unknown model or experiment.
    """
    service = as_registry(registry)
    if not isinstance(model_uri, str) or not model_uri:
        raise InvalidInput(f"model_uri must be a model URI string, got {model_uri!r}")
    if model_type is not None and model_type not in MODEL_TYPES:
        raise InvalidInput(f"model_type {model_type!r} is not valid; use 'classifier', 'regressor' "
                           "or None to infer it")
    frame, default_name, digest = _read_data(data)
    name = rules.param_value("dataset", dataset_name if dataset_name is not None else default_name)
    if dataset_name is not None:
        rules.check_dataset_name(dataset_name)  # before the work: it names a dataset in the lineage graph
    # A file, or a DataFrame given a name, becomes a dataset version read by the evaluation run
    # (an unnamed DataFrame would all share one made-up name, so it is recorded by digest only).
    is_file = isinstance(data, str | os.PathLike)
    lineage_input = (data, dataset_name) if is_file or dataset_name is not None else None
    labels, features = _split(frame, target)

    version = service.resolve_model_version(model_uri) if model_uri.startswith("models:/") else None
    # The package is downloaded into a folder removed afterwards; it stays while predicting
    # because some flavors (pyfunc artifacts) read their files lazily.
    with tempfile.TemporaryDirectory(prefix="shipyard-evaluate-") as tmp:
        # The version pinned by number (an alias may move meanwhile), read through the registry: its
        # source text is only trusted as a package of this store (an external one can spell a local path).
        pinned = f"models:/{version.name}/{version.version}" if version is not None else model_uri
        model = service.load_model(pinned, dst_path=tmp)
        source_run = _source_run(service, model_uri, version, model)
        raw = model.unwrap()
        kind = model_type or _infer_type(raw, labels)
        if kind == "classifier":
            metrics, figure = _classify(model, raw, features, labels)
            plot = CONFUSION_MATRIX_ARTIFACT
        else:
            metrics, figure = _regress(_predict(model, features), labels)
            plot = RESIDUALS_ARTIFACT

    tags = {MODEL_URI_TAG: model_uri}
    if version is not None:
        tags[MODEL_VERSION_TAG] = f"{version.name}/{version.version}"
    if source_run is not None:
        tags[SOURCE_RUN_TAG] = source_run
    experiment = experiment_id if experiment_id is not None else _experiment_of(service, source_run)
    run_id = _log_run(service, experiment, f"evaluate {model_uri}"[: rules.MAX_RUN_NAME_LENGTH], tags,
                      {"dataset": name, "dataset_digest": digest, "rows": len(frame), "target": target,
                       "model_type": kind}, metrics, {plot: figure}, lineage_input)
    if version is not None:
        service.store.models.set_version_tags(version.name, version.version, {EVALUATION_RUN_TAG: run_id},
                                              user=service.principal.name)
    return Evaluation(run_id, model_uri, kind, metrics, [plot])


# -- data ------------------------------------------------------------------------------------------

def dataset_digest(frame: pd.DataFrame) -> str:
    """``t2:sha256:<hex>`` of a DataFrame: :func:`shipyard.data.digest_table`, the digest of its
    canonical Arrow form (recipe ``shipyard-table-v2``: the index counts only when named, a
    categorical is its categories and codes, NaN is missing; the same after a Parquet round trip).
    Files given by path are digested as their bytes instead, so a file's digest equals
    ``sha256sum`` of it."""
    from shipyard.data.table_digest import digest_table

    return digest_table(frame)


def _read_data(data: Any) -> tuple[pd.DataFrame, str, str]:
    """(frame, default dataset name, digest) of a DataFrame or a file path."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data, "dataframe", dataset_digest(data)
    if not isinstance(data, str | os.PathLike):
        raise InvalidInput(f"data must be a pandas DataFrame or the path of a .parquet or .csv file, "
                           f"got {type(data).__name__}")
    path = Path(data).expanduser()
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise InvalidInput(f"cannot read data file {str(path)!r}: unsupported file type "
                           f"{path.suffix or '(none)'!r}; use {', '.join(_READERS)}")
    if not path.is_file():
        raise InvalidInput(f"cannot read data file {str(path)!r}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"data file {str(path)!r} is empty")
    try:
        frame = getattr(pd, reader)(path)
    except (ValueError, OSError) as exc:  # pyarrow's and pandas' parse errors derive from these
        raise InvalidInput(f"cannot read data file {str(path)!r} as {path.suffix.lstrip('.')}: {exc}") from None
    from shipyard.data.digest import digest_file

    return frame, path.name, digest_file(path)


def _split(frame: pd.DataFrame, target: str) -> tuple[pd.Series, pd.DataFrame]:
    """(labels, features); every rule on the table's shape is checked here."""
    if not isinstance(target, str) or not target:
        raise InvalidInput(f"target must name the label column, got {target!r}")
    if len(frame) == 0:
        raise InvalidInput("the data is empty: it has no rows to evaluate on")
    if target not in frame.columns:
        shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:50])
        more = f" (and {len(frame.columns) - 50} more)" if len(frame.columns) > 50 else ""
        raise InvalidInput(f"target column {target!r} is not in the data; its columns are: {shown}{more}")
    labels = frame[target]
    missing = int(labels.isna().sum())
    if missing:
        raise InvalidInput(f"target column {target!r} has {missing} missing label(s) (NaN/None) out of "
                           f"{len(frame)} rows; drop or fill them before evaluating")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise InvalidInput(f"the data has no feature columns besides the target {target!r}")
    return labels, features


# -- model -----------------------------------------------------------------------------------------

def _source_run(registry: RegistryService, model_uri: str, version: ModelVersion | None, model: Any) -> str | None:
    """The run that logged the model: the version's, the ``runs:/`` URI's, or the package's own
    record when that run is in this store."""
    if version is not None:
        return version.run_id
    if model_uri.startswith("runs:/"):
        from shipyard.models.sources import check_version_source

        return check_version_source(model_uri)[0]
    run_id: str | None = model.manifest.run_id
    if run_id is None:
        return None
    try:
        registry.store.runs.get(run_id)
    except (NotFound, InvalidInput):  # a package logged to another store
        return None
    return run_id


def _experiment_of(registry: RegistryService, run_id: str | None) -> str:
    if run_id is None:
        return DEFAULT_EXPERIMENT_ID
    return registry.store.runs.get(run_id).info.experiment_id


def _infer_type(raw: Any, labels: pd.Series) -> str:
    import pandas as pd

    if hasattr(raw, "predict_proba"):
        return "classifier"
    if pd.api.types.is_bool_dtype(labels) or not pd.api.types.is_numeric_dtype(labels):
        return "classifier"
    if pd.api.types.is_integer_dtype(labels) and labels.nunique() <= MAX_INFERRED_CLASSES:
        return "classifier"
    return "regressor"


def _as_rows(values: Any, rows: int, what: str) -> np.ndarray:
    import numpy as np

    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.ravel()
    if array.ndim != 1 or len(array) != rows:
        raise InvalidInput(f"the model's {what} has shape {array.shape} for {rows} rows; evaluation needs "
                           "one value per row")
    return array


def _predict(model: Any, features: pd.DataFrame) -> np.ndarray:
    return _as_rows(model.predict(features), len(features), "prediction")


def _probabilities(model: Any, raw: Any, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """(class probabilities, classes) from the underlying object's ``predict_proba``, on the
    input as the signature adapts it; ``None`` when the model has no usable one."""
    import numpy as np

    classes = getattr(raw, "classes_", None)
    if not hasattr(raw, "predict_proba") or classes is None:
        return None
    data: Any = features
    if model.manifest.signature is not None:
        from shipyard.models.signature import Signature, enforce

        data = enforce(Signature.from_dict(model.manifest.signature).inputs, features)
    try:
        proba = np.asarray(raw.predict_proba(data), dtype=float)
    except (AttributeError, NotImplementedError):  # e.g. an estimator fitted without probability=True
        return None
    classes = np.asarray(classes)
    if proba.shape != (len(features), len(classes)):
        return None
    return proba, classes


# -- metrics ---------------------------------------------------------------------------------------

def _classify(model: Any, raw: Any, features: pd.DataFrame, labels: pd.Series) -> tuple[dict[str, float], Any]:
    import numpy as np
    from sklearn import metrics as m
    from sklearn.utils.multiclass import unique_labels

    y = labels.to_numpy()
    predicted = _predict(model, features)
    if predicted.dtype.kind == "f" and y.dtype.kind != "f" and not np.all(np.mod(predicted, 1) == 0):
        raise InvalidInput("the model's predictions are fractional scores, not class labels; evaluate it as "
                           "model_type='regressor', or wrap it so that predict returns labels")
    probabilities = _probabilities(model, raw, features)
    try:
        known = [probabilities[1]] if probabilities is not None else []
        classes = unique_labels(y, predicted, *known)
        out = {"accuracy": m.accuracy_score(y, predicted)}
        if len(classes) <= 2:
            positive = classes[-1]
            out["precision"] = m.precision_score(y, predicted, pos_label=positive, zero_division=0)
            out["recall"] = m.recall_score(y, predicted, pos_label=positive, zero_division=0)
            out["f1"] = m.f1_score(y, predicted, pos_label=positive, zero_division=0)
        else:
            for name, score in (("precision", m.precision_score), ("recall", m.recall_score), ("f1", m.f1_score)):
                out[f"{name}_macro"] = score(y, predicted, average="macro", zero_division=0)
    except (ValueError, TypeError) as exc:  # labels and predictions of different kinds
        raise InvalidInput(f"cannot compare the labels with the model's predictions: {exc}") from None
    if probabilities is not None:
        out.update(_probability_metrics(y, *probabilities))
    matrix = m.confusion_matrix(y, predicted, labels=classes)
    return {k: float(v) for k, v in out.items()}, _confusion_figure(matrix, classes)


def _probability_metrics(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as m

    out: dict[str, float] = {}
    present = np.unique(y)
    if np.isin(present, classes).all():
        out["log_loss"] = m.log_loss(y, proba, labels=classes)
        if len(classes) == 2 and len(present) == 2:
            out["roc_auc"] = m.roc_auc_score(y == classes[1], proba[:, 1])
        elif len(classes) > 2 and len(present) == len(classes):
            out["roc_auc_ovr"] = m.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
    return out


def _regress(predicted: np.ndarray, labels: pd.Series) -> tuple[dict[str, float], Any]:
    import numpy as np
    import pandas as pd
    from sklearn import metrics as m

    if not pd.api.types.is_numeric_dtype(labels) or pd.api.types.is_bool_dtype(labels):
        raise InvalidInput(f"target column {labels.name!r} is {labels.dtype}, not numbers: a regressor needs "
                           "numeric labels (pass model_type='classifier' for class labels)")
    try:
        predicted = predicted.astype(float)
    except (ValueError, TypeError):
        raise InvalidInput(f"the model's predictions are {predicted.dtype}, not numbers: evaluate it as "
                           "model_type='classifier'") from None
    if not np.isfinite(predicted).all():
        raise InvalidInput("the model's predictions contain NaN or infinite values")
    y = labels.to_numpy(dtype=float)
    out = {"mae": m.mean_absolute_error(y, predicted), "rmse": m.root_mean_squared_error(y, predicted)}
    if len(y) >= 2:
        out["r2"] = m.r2_score(y, predicted)
    return {k: float(v) for k, v in out.items()}, _residual_figure(y, predicted)


# -- plots -----------------------------------------------------------------------------------------

def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _confusion_figure(matrix: np.ndarray, classes: np.ndarray) -> Any:
    size = min(4 + 0.4 * len(classes), 16)
    figure = _figure(size + 1, size)
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax)
    names = [str(c) for c in classes]
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="Predicted label", ylabel="True label",
           title="Confusion matrix")
    ax.set_xticklabels(names, rotation=45 if len(names) > 5 else 0, ha="right" if len(names) > 5 else "center")
    ax.set_yticklabels(names)
    if len(names) <= MAX_ANNOTATED_CLASSES:
        threshold = matrix.max() / 2
        for row in range(len(names)):
            for col in range(len(names)):
                count = matrix[row, col]
                ax.text(col, row, str(count), ha="center", va="center",
                        color="white" if count > threshold else "black")
    return figure


def _residual_figure(y: np.ndarray, predicted: np.ndarray) -> Any:
    import numpy as np

    if len(y) > MAX_PLOTTED_POINTS:
        keep = np.random.default_rng(0).choice(len(y), MAX_PLOTTED_POINTS, replace=False)
        y, predicted = y[keep], predicted[keep]
    figure = _figure(7, 5)
    ax = figure.subplots()
    ax.scatter(predicted, y - predicted, s=8, alpha=0.5)
    ax.axhline(0.0, color="black", linewidth=1)
    ax.set(xlabel="Predicted value", ylabel="Residual (true - predicted)", title="Residuals")
    return figure


# -- logging ---------------------------------------------------------------------------------------

def _log_run(registry: RegistryService, experiment_id: str, run_name: str, tags: dict[str, str],
             params: dict[str, Any], metrics: dict[str, float], figures: dict[str, Any],
             dataset: tuple[Any, str | None] | None) -> str:
    """Create the evaluation run as the registry's principal, log everything (``dataset``: the
    data and its name, recorded as the run's input), and end it (FAILED if logging breaks)."""
    tracking = TrackingService(registry.store, registry.artifacts, registry.principal)
    run_id = tracking.create_run(str(experiment_id), run_name, tags=tags, user_id=registry.principal.name).info.run_id
    try:
        logged_at = now_ms()
        tracking.write_run(run_id, params=params.items(),
                           metrics=[Metric(k, v, 0, logged_at) for k, v in metrics.items()])
        for path, figure in figures.items():
            tracking.log_figure(run_id, figure, path)
        if dataset is not None:
            source, name = dataset
            datasets = DatasetService(registry.store, registry.artifacts, registry.principal)
            datasets.log(run_id, source, name, context="evaluation")
    except BaseException:
        with contextlib.suppress(ShipyardError):  # report the first failure, not this one
            tracking.update_run(run_id, status=RunStatus.FAILED, end_time=now_ms())
        raise
    tracking.update_run(run_id, status=RunStatus.FINISHED, end_time=now_ms())
    return run_id
