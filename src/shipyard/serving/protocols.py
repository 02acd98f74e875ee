"""Request and response codecs of the native protocol and of MLflow's ``/invocations``.

A decoder turns a request body into model input in one of the shapes
:meth:`~shipyard.serving.models.ServedModel.prepare` takes (records, a dict of columns, nested
lists, a DataFrame); an encoder turns the model's predictions for those rows into the response
body. Neither touches the model. The Open Inference Protocol's codec is :mod:`.oip`.

Native (``POST /v1/models/{name}/predict``)::

    {"inputs": [{"age": 31, "plan": "pro"}, ...]}       records
    {"inputs": {"age": [31, 45], "plan": ["pro", "free"]}}  columns
    {"inputs": [[0.1, 2.0], [0.3, 1.5]]}                 rows, for models without column names
    -> {"model": ..., "version": ..., "predictions": [...], "prediction_ids": [...]}

MLflow (``POST /invocations``), as MLflow's scoring server takes it: a JSON object with exactly one
of ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``, or a ``text/csv`` body
with a header row; the answer is ``{"predictions": [...]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.errors import InvalidInput, UnsupportedMediaType
from shipyard.serving.encoding import jsonable, loads
from shipyard.serving.tables import Split

__all__ = ["MLFLOW_KEYS", "decode_mlflow", "decode_native", "encode_mlflow", "encode_native", "media_type"]

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def media_type(content_type: str | None) -> str:
    """``"application/json"`` of ``"application/json; charset=utf-8"``; empty when absent."""
    return (content_type or "").partition(";")[0].strip().lower()


# -- native --------------------------------------------------------------------------------------------

def decode_native(body: bytes) -> Any:
    payload = loads(body)
    if not isinstance(payload, Mapping) or "inputs" not in payload:
        raise InvalidInput('expected a JSON object with "inputs": a list of records ({"column": value}), an '
                           'object of columns ({"column": [values]}) or a list of rows ([[...], ...])')
    inputs = payload["inputs"]
    if not isinstance(inputs, list | Mapping):
        raise InvalidInput(f'"inputs" must be a list of rows or an object of columns, not {_json_type(inputs)}')
    return inputs


def encode_native(name: str, version: str, predictions: Any, ids: list[str]) -> dict[str, Any]:
    return {"model": name, "version": version, "predictions": jsonable(predictions), "prediction_ids": ids}


# -- MLflow scoring ------------------------------------------------------------------------------------

def decode_mlflow(body: bytes, content_type: str | None) -> Any:
    kind = media_type(content_type)
    if kind == "text/csv":
        return _read_csv(body)
    if kind not in ("application/json", ""):
        raise UnsupportedMediaType(f"content type {kind!r} is not supported: send application/json or text/csv")
    payload = loads(body)
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"expected a JSON object with one of {', '.join(MLFLOW_KEYS)}, got {_json_type(payload)}")
    given = [key for key in MLFLOW_KEYS if key in payload]
    if len(given) != 1:
        found = f"got {', '.join(given)}" if given else f"got keys {sorted(payload)[:10]}"
        raise InvalidInput(f"expected exactly one of {', '.join(MLFLOW_KEYS)} in the JSON object ({found})")
    unknown = sorted(set(payload) - set(MLFLOW_KEYS) - {"params"})
    if unknown:
        raise InvalidInput(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; expected one of "
                           f"{', '.join(MLFLOW_KEYS)} (and optionally params)")
    if payload.get("params"):
        raise InvalidInput("params are not supported: Shipyard models take no inference parameters")
    key = given[0]
    value = payload[key]
    if key == "dataframe_split":
        return _dataframe_split(value)
    if key == "dataframe_records":
        if not isinstance(value, list) or (value and not isinstance(value[0], Mapping)):
            raise InvalidInput('"dataframe_records" must be a list of objects ({"column": value, ...})')
        return value
    if key == "instances":
        if not isinstance(value, list):
            raise InvalidInput(f'"instances" must be a list (one item per row), not {_json_type(value)}')
        return value
    if not isinstance(value, list | Mapping):  # "inputs": columns, or one tensor as nested lists
        raise InvalidInput(f'"inputs" must be an object of columns or a list, not {_json_type(value)}')
    return value


def encode_mlflow(predictions: Any) -> dict[str, Any]:
    return {"predictions": jsonable(predictions)}


def _dataframe_split(value: Any) -> Split:
    if not isinstance(value, Mapping) or "data" not in value:
        raise InvalidInput('"dataframe_split" must be an object with "data" (a list of rows) and "columns"')
    unknown = sorted(set(value) - {"columns", "data", "index"})
    if unknown:
        raise InvalidInput(f'"dataframe_split" has unknown key(s) {", ".join(unknown)}; expected columns, data, index')
    data, columns = value["data"], value.get("columns")
    if not isinstance(data, list) or (data and not isinstance(data[0], list)):
        raise InvalidInput('"dataframe_split.data" must be a list of rows, each a list of values')
    if columns is not None and (not isinstance(columns, list)
                                or not all(type(c) is str or isinstance(c, str | int) for c in columns)):
        raise InvalidInput('"dataframe_split.columns" must be a list of column names')
    # Not a DataFrame yet: the model's signature decides whether one is built per request or per batch.
    return Split(columns, data)


def _read_csv(body: bytes) -> Any:
    import io

    import pandas as pd

    if not body.strip():
        raise InvalidInput("the CSV body is empty: send a header row and at least one data row")
    try:
        return pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"malformed CSV body: {str(exc).strip()}") from None


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)

