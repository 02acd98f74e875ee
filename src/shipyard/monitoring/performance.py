"""Live performance: the model's answers scored against the feedback sent for them.

Rows without feedback are left out. What is compared:

- the **label**: the feedback value (a number, string or boolean);
- the **predicted label**: the answer when it is a number, string or boolean, else the answer's
  field ``label``, ``prediction``, ``class`` or ``value`` (the first present);
- the **score** (for ROC AUC): the answer's field ``proba``, ``probability`` or ``score``; a list
  of per-class probabilities gives its second entry (the positive class). A numeric answer
  strictly between 0 and 1 where every label is 0/1 (or a boolean) is a probability: it is the
  score, and its predicted label is ``score >= 0.5``.

Classification metrics (``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc``) treat two
classes as binary, the positive class being 1 / ``True``, else the larger label; with more
classes precision, recall and F1 are macro averages over the classes seen and ROC AUC is not
defined. Regression metrics: ``mae``, ``rmse``. A metric that is not defined for the window
(ROC AUC with one class only, a regression metric on string labels) is left out, with a note.
Everything is numpy over whole columns; the results equal scikit-learn's (tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["CLASSIFICATION_METRICS", "METRICS", "REGRESSION_METRICS", "check_metrics", "live_performance"]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
LABEL_FIELDS = ("label", "prediction", "class", "value")
SCORE_FIELDS = ("proba", "probability", "score")


def check_metrics(names: Any) -> tuple[str, ...]:
    """``names`` as known metric names, in order; ``InvalidInput`` naming an unknown one, or a mix
    of classification and regression metrics."""
    out = []
    for name in names:
        metric = str(name).strip().lower()
        if metric not in METRICS:
            raise InvalidInput(f"unknown metric {name!r}: choose from {', '.join(METRICS)}", field="metrics")
        out.append(metric)
    if set(out) & set(CLASSIFICATION_METRICS) and set(out) & set(REGRESSION_METRICS):
        raise InvalidInput(f"metrics {', '.join(out)} mix classification ({', '.join(CLASSIFICATION_METRICS)}) and "
                           f"regression ({', '.join(REGRESSION_METRICS)}); a model is one or the other",
                           field="metrics")
    return tuple(dict.fromkeys(out))


def live_performance(outputs: pa.Table, labels: pa.Array,
                     metrics: tuple[str, ...]) -> tuple[dict[str, float], list[str]]:
    """``metrics`` of the answers in ``outputs`` against ``labels`` (null: no feedback), and notes
    on what could not be computed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not metrics:
        return {}, []
    has = pc.is_valid(labels)
    if not pc.any(has).as_py():
        return {}, []
    predicted, score = _answers(outputs)
    if predicted is None:
        return {}, ["the answers have no label to score (expected a number, string or boolean, or a field "
                    f"{', '.join(LABEL_FIELDS)})"]
    mask = pa.array(has.to_numpy(zero_copy_only=False) & predicted.is_valid().to_numpy(zero_copy_only=False))
    y_true, y_pred = labels.filter(mask), predicted.filter(mask)
    y_score = score.filter(mask) if score is not None else None
    if metrics[0] in REGRESSION_METRICS:
        return _regression(y_true, y_pred, metrics)
    return _classification(y_true, y_pred, y_score, metrics)


def _field(outputs: pa.Table, names: tuple[str, ...]) -> pa.Array | None:
    for name in names:
        if f"output.{name}" in outputs.column_names:
            return outputs.column(f"output.{name}").combine_chunks()
    return None


def _answers(outputs: pa.Table) -> tuple[pa.Array | None, pa.Array | None]:
    """(predicted label, score) columns of the answers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    score = _field(outputs, SCORE_FIELDS)
    if score is not None and (pa.types.is_list(score.type) or pa.types.is_large_list(score.type)):
        score = pc.list_element(score, 1)
    if score is not None and not (pa.types.is_floating(score.type) or pa.types.is_integer(score.type)):
        score = None
    if "output" in outputs.column_names:
        answer = outputs.column("output").combine_chunks()
        if pa.types.is_list(answer.type) or pa.types.is_struct(answer.type):
            return None, score
        return answer, score
    return _field(outputs, LABEL_FIELDS), score


def _numbers(values: pa.Array) -> np.ndarray | None:
    import pyarrow as pa

    t = values.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        numbers: np.ndarray = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return numbers
    return None


def _regression(y_true: pa.Array, y_pred: pa.Array, metrics: tuple[str, ...]) -> tuple[dict[str, float], list[str]]:
    import numpy as np

    t, p = _numbers(y_true), _numbers(y_pred)
    if t is None or p is None or not len(t):
        return {}, ["regression metrics need numeric labels and answers"]
    error = t - p
    values = {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}
    return {m: values[m] for m in metrics}, []


def _classification(y_true: pa.Array, y_pred: pa.Array, y_score: pa.Array | None,
                    metrics: tuple[str, ...]) -> tuple[dict[str, float], list[str]]:
    import numpy as np

    t, p = _numbers(y_true), _numbers(y_pred)
    score = _numbers(y_score) if y_score is not None else None
    notes: list[str] = []
    binary_truth = t is not None and np.isin(t, (0.0, 1.0)).all()
    if t is not None and p is not None and binary_truth and not np.isin(p, (0.0, 1.0)).all() \
            and ((p >= 0) & (p <= 1)).all():
        score, p = p, (p >= 0.5).astype(np.float64)  # a probability answer
    if t is None or p is None:  # labels as text: compare their string forms
        t = np.asarray([str(v) for v in y_true.to_pylist()], dtype=object)
        p = np.asarray([str(v) for v in y_pred.to_pylist()], dtype=object)
    if not len(t):
        return {}, []
    classes = np.unique(np.concatenate([t, p]))
    out: dict[str, float] = {"accuracy": float(np.mean(t == p))}
    if len(classes) <= 2:
        positive = 1.0 if binary_truth else classes[-1]
        precision, recall, f1 = _prf(t, p, positive)
        out |= {"precision": precision, "recall": recall, "f1": f1}
        auc = _roc_auc(t == positive, score) if score is not None else None
        if auc is not None:
            out["roc_auc"] = auc
        elif "roc_auc" in metrics:
            notes.append("roc_auc needs a score (a probability) and both classes among the labels")
    else:
        triples = [_prf(t, p, c) for c in classes]
        out |= {name: float(np.mean([x[i] for x in triples])) for i, name in enumerate(("precision", "recall", "f1"))}
        if "roc_auc" in metrics:
            notes.append(f"roc_auc is computed for two classes; the labels have {len(classes)}")
    return {m: out[m] for m in metrics if m in out}, notes


def _prf(t: np.ndarray, p: np.ndarray, positive: Any) -> tuple[float, float, float]:
    """Precision, recall and F1 of class ``positive`` (0 where undefined, as scikit-learn's default)."""
    predicted, actual = p == positive, t == positive
    tp = float((predicted & actual).sum())
    precision = tp / predicted.sum() if predicted.sum() else 0.0
    recall = tp / actual.sum() if actual.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def _roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """The area under the ROC curve: the Mann-Whitney U of the positives' scores (ties count half)."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
