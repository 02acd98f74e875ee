"""The Open Inference Protocol (KServe's "V2 protocol"), REST/JSON: typed tensors in and out.

A request carries ``inputs``, each ``{"name", "shape", "datatype", "data"}`` with ``data`` in
row-major order, flat or nested. A model is fed either one tensor (``[n, d]`` for a model without
column names, or in the signature's column order for one with them) or one 1-D tensor ``[n]`` per
column, named like the signature's columns. The response has one output tensor ``predict`` (or
one per column when the model returns a table), plus ``model_name``, ``model_version``, ``id``
(the request's, else the request id) and ``parameters.prediction_ids``.

Datatypes are the protocol's: ``BOOL``, ``UINT8``..``UINT64``, ``INT8``..``INT64``, ``FP16``,
``FP32``, ``FP64`` and ``BYTES`` (strings, in JSON). Values are checked against the declared
datatype with whole-array operations: a fraction in an ``INT64`` tensor, a number out of range
of ``UINT8`` or a string in an ``FP32`` one is a 400, never a silent truncation.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.serving.encoding import jsonable, loads

if TYPE_CHECKING:
    from shipyard.models.signature import Schema
    from shipyard.serving.models import ServedModel

__all__ = ["BINARY_HEADER", "BINARY_REFUSED", "DATATYPES", "decode_infer", "decode_infer_request", "encode_infer",
           "model_metadata"]

DATATYPES: dict[str, str] = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object",
}
# Signature dtypes as protocol datatypes (strings, binary and datetimes travel as BYTES).
_SIGNATURE_DATATYPES = {"bool": "BOOL", "int32": "INT32", "int64": "INT64", "float32": "FP32", "float64": "FP64"}
OUTPUT_NAME = "predict"


BINARY_HEADER = "inference-header-content-length"
BINARY_REFUSED = ("the binary tensor data extension is not supported: send tensors as JSON \"data\" "
                  "(tritonclient: set_data_from_numpy(..., binary_data=False))")


def decode_infer(body: bytes, served: ServedModel) -> tuple[Any, str | None]:
    """(model input, the request's ``id``) of an inference request body."""
    data, request_id, _ = decode_infer_request(body, served)
    return data, request_id


def decode_infer_request(body: bytes, served: ServedModel) -> tuple[Any, str | None, list[str] | None]:
    """(model input, the request's ``id``, the output names it asks for or None for all)."""
    payload = loads(body)
    if not isinstance(payload, Mapping) or not isinstance(payload.get("inputs"), list) or not payload["inputs"]:
        raise InvalidInput('expected a JSON object with "inputs": a non-empty list of tensors, each '
                           '{"name", "shape", "datatype", "data"}')
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput('"id" must be a string')
    tensors = [_tensor(raw, i) for i, raw in enumerate(payload["inputs"])]
    return _model_input(tensors, served), request_id, _requested_outputs(payload.get("outputs"))


def _requested_outputs(raw: Any) -> list[str] | None:
    """The names in ``"outputs": [{"name": ...}, ...]``. Asking for binary output data is
    answered with JSON data, which clients read as well (the server lists no extensions)."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(o, Mapping) and isinstance(o.get("name"), str) for o in raw):
        raise InvalidInput('"outputs" must be a list of objects, each with a "name" (a string)')
    names = [o["name"] for o in raw]
    if len(set(names)) != len(names):
        raise InvalidInput(f"output names must be unique, got {names}")
    return names


def _tensor(raw: Any, index: int) -> tuple[str, Any]:
    import numpy as np

    where = f"inputs[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where} must be an object with name, shape, datatype and data")
    missing = [key for key in ("name", "shape", "datatype", "data") if key not in raw]
    if missing:
        raise InvalidInput(f"{where} is missing {', '.join(missing)}")
    name, shape, datatype, data = raw["name"], raw["shape"], raw["datatype"], raw["data"]
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where}.name must be a non-empty string")
    where = f"tensor {name!r}"
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise InvalidInput(f"{where}: shape must be a list of sizes (whole numbers >= 0), got {shape!r}")
    if datatype not in DATATYPES:
        raise InvalidInput(f"{where}: unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}")
    if not isinstance(data, list):
        raise InvalidInput(f"{where}: data must be a list (flat or nested, in row-major order)")
    try:
        values = np.array(data, dtype=object if datatype == "BYTES" else None)
    except ValueError as exc:
        raise InvalidInput(f"{where}: the nested data lists are ragged ({exc})") from None
    expected = math.prod(shape)
    if values.size != expected:
        raise InvalidInput(f"{where}: shape {shape} holds {expected} values but data has {values.size}",
                           tensor=name, shape=shape, values=int(values.size))
    values = _typed(values, datatype, where)
    return name, values.reshape(shape)


def _typed(values: Any, datatype: str, where: str) -> Any:
    """``values`` (as parsed) as ``datatype``, refusing anything a cast would change."""
    import numpy as np

    if datatype == "BYTES":
        flat = values.ravel()
        if flat.size and not all(isinstance(v, str) for v in flat.tolist()):
            raise InvalidInput(f"{where}: BYTES data must be strings")
        return values
    kind, target = values.dtype.kind, np.dtype(DATATYPES[datatype])
    if values.size == 0:
        return values.astype(target)
    if kind not in "biuf":
        if any(v is None for v in values.ravel().tolist()):
            raise InvalidInput(f"{where}: null values are not allowed in a tensor", expected=datatype)
        raise InvalidInput(f"{where}: {datatype} data must be {'booleans' if datatype == 'BOOL' else 'numbers'}, "
                           f"got {'strings' if kind in 'US' else 'mixed values'}", expected=datatype)
    if target.kind == "b":
        if kind != "b":
            raise InvalidInput(f"{where}: BOOL data must be true/false, got numbers", expected=datatype)
        return values
    if kind == "b":
        raise InvalidInput(f"{where}: {datatype} data must be numbers, got booleans", expected=datatype)
    if target.kind in "iu":
        if kind == "f":
            raise InvalidInput(f"{where}: {datatype} data must be whole numbers, got fractions or exponents",
                               expected=datatype)
        info = np.iinfo(target)
        if values.min() < info.min or values.max() > info.max:
            raise InvalidInput(f"{where}: values out of the range of {datatype} ({info.min}..{info.max})",
                               expected=datatype)
    return values.astype(target)


def _model_input(tensors: list[tuple[str, Any]], served: ServedModel) -> Any:
    schema = served.input_schema
    columns = served.column_names
    names = [name for name, _ in tensors]
    if len(set(names)) != len(names):
        raise InvalidInput(f"tensor names must be unique, got {names}")
    if len(tensors) == 1 and not (columns and names[0] in columns):
        name, values = tensors[0]
        if columns is None:
            return values
        if values.ndim != 2 or values.shape[1] != len(columns):
            raise InvalidInput(f"tensor {name!r} has shape {list(values.shape)}; this model takes columns "
                               f"{columns}: send one [n, {len(columns)}] tensor with them in that order, or one "
                               "[n] tensor per column named like the column", expected_columns=columns)
        layout = served.table_layout
        block = None if layout is None else layout.rows_of_array(values)
        if block is not None:  # checked and kept as it is: one DataFrame per batch, not per request
            return block
        import pandas as pd

        return pd.DataFrame(values, columns=columns)
    if schema is not None and schema.kind == "tensor":
        raise InvalidInput(f"this model takes one tensor, got {len(tensors)} ({', '.join(names)})")
    out = {}
    for name, values in tensors:
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise InvalidInput(f"tensor {name!r}: a column tensor has shape [n] (or [n, 1]), got {list(values.shape)}")
        out[name] = values
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise InvalidInput(f"column tensors differ in length: {', '.join(f'{n}: {len(v)}' for n, v in out.items())}")
    return out


# -- responses -----------------------------------------------------------------------------------------

def _column_array(frame: Any, label: Any) -> Any:
    return frame[label].to_numpy()


def encode_infer(served: ServedModel, predictions: Any, ids: list[str], request_id: str,
                 requested: list[str] | None = None) -> dict[str, Any]:
    """The inference response; ``requested``: the output names the request asked for (all when None)."""
    import numpy as np

    arrays: dict[str, Callable[[], Any]]
    if hasattr(predictions, "columns"):
        produced = {str(name): name for name in predictions.columns}
        arrays = {str(name): functools.partial(_column_array, predictions, label) for name, label in produced.items()}
    else:
        arrays = {OUTPUT_NAME: lambda: predictions.to_numpy() if hasattr(predictions, "to_numpy")
                  else np.asarray(predictions)}
    if requested is not None:
        unknown = [name for name in requested if name not in arrays]
        if unknown:
            raise InvalidInput(f"unknown output{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                               f"this model returns {', '.join(arrays)}", outputs=list(arrays))
    outputs = [_output(name, arrays[name]()) for name in (arrays if requested is None else requested)]
    return {"model_name": served.name, "model_version": served.version, "id": request_id,
            "parameters": {"prediction_ids": ids}, "outputs": outputs}


def _output(name: str, values: Any) -> dict[str, Any]:
    return {"name": name, "shape": list(values.shape), "datatype": _datatype_of(values),
            "data": jsonable(values.reshape(-1))}


def _datatype_of(values: Any) -> str:
    kind, bits = values.dtype.kind, values.dtype.itemsize * 8
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'INT' if kind == 'i' else 'UINT'}{bits}"
    if kind == "f":
        return f"FP{bits}"
    return "BYTES"


def model_metadata(served: ServedModel, versions: list[str]) -> dict[str, Any]:
    """The model metadata response: name, versions, platform, and the inputs and outputs the
    signature declares (empty lists for a model saved without one)."""
    signature = served.signature
    return {"name": served.name, "versions": versions, "platform": f"shipyard-{served.flavor}",
            "inputs": _metadata_tensors(None if signature is None else signature.inputs, "input-0"),
            "outputs": _metadata_tensors(None if signature is None else signature.outputs, OUTPUT_NAME)}


def _metadata_tensors(schema: Schema | None, tensor_name: str) -> list[dict[str, Any]]:
    if schema is None:
        return []
    if schema.kind == "tensor":
        spec = schema.columns[0]
        return [{"name": spec.name or tensor_name, "datatype": _SIGNATURE_DATATYPES.get(spec.dtype, "BYTES"),
                 "shape": list(spec.shape or ())}]
    return [{"name": spec.name, "datatype": _SIGNATURE_DATATYPES.get(spec.dtype, "BYTES"), "shape": [-1],
             "parameters": {"optional": spec.optional}} for spec in schema.columns]
