"""JSON in and out of the serving app, and the per-row prediction ids.

orjson is used when it is installed (it parses and writes several times faster than the standard
library); otherwise :mod:`json`. Both behave the same here: the non-standard ``NaN`` and
``Infinity`` literals are refused on input, and non-finite numbers in predictions are written as
``null``, so switching parsers never changes what a client sees.
"""

from __future__ import annotations

import json
import os
from typing import Any

from shipyard.errors import InvalidInput

try:
    import orjson as _orjson
except ImportError:  # the stdlib fallback below
    _orjson = None  # type: ignore[assignment]  # None stands for "not installed"

__all__ = ["JSON_BACKEND", "dumps", "jsonable", "loads", "prediction_ids", "uuid4_hex"]

JSON_BACKEND = "orjson" if _orjson is not None else "json"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (send null for a missing value)")


def loads(body: bytes) -> Any:
    """The JSON document in ``body``, or :class:`InvalidInput` saying why it is not one."""
    if not body.strip():
        raise InvalidInput("malformed JSON body: the body is empty")
    try:
        if _orjson is not None:
            return _orjson.loads(body)
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidInput("malformed JSON body: nested too deeply for the parser") from None
    except UnicodeDecodeError:
        raise InvalidInput("malformed JSON body: not valid UTF-8") from None
    except ValueError as exc:  # json.JSONDecodeError and orjson.JSONDecodeError are ValueErrors
        position = getattr(exc, "pos", None)
        if isinstance(position, int):
            for constant in ("NaN", "Infinity", "-Infinity"):
                if body[position:position + len(constant)] == constant.encode():
                    exc = ValueError(f"{constant} is not valid JSON (send null for a missing value)")
        raise InvalidInput(f"malformed JSON body: {exc}") from None


def _default(value: Any) -> Any:
    """numpy and pandas scalars that slipped into a response (e.g. inside a list a model returned)."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    return str(value)


def dumps(payload: Any) -> bytes:
    if _orjson is not None:
        return _orjson.dumps(payload, default=_default)
    return json.dumps(payload, separators=(",", ":"), allow_nan=False, default=_default).encode()


def jsonable(values: Any) -> Any:
    """Predictions (a numpy array, pandas Series or DataFrame, list or scalar) as plain Python:
    one item per row, a DataFrame as records. Conversions are whole-array (``tolist``), never a
    Python loop per value, except the unavoidable one building records."""
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.DataFrame):
        columns = {str(name): jsonable(values[name]) for name in values.columns}
        names = list(columns)
        return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    if isinstance(values, pd.Series | pd.Index):
        if values.dtype.kind == "M" or isinstance(values.dtype, pd.DatetimeTZDtype):
            return [None if v is pd.NaT else v.isoformat() for v in values]
        if values.dtype.kind == "f":
            values = values.to_numpy(dtype="float64", na_value=np.nan)
        elif values.hasnans:
            values = values.to_numpy(dtype=object, na_value=None)
        else:
            values = values.to_numpy()
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            # JSON has no NaN/Infinity: null, as pandas' own to_json writes them.
            # numpy's stubs refuse None as a fill value; numpy takes it (an object array)
            return np.where(np.isfinite(values), values, None).tolist()  # type: ignore[call-overload]
        if values.dtype.kind == "M":
            return np.datetime_as_string(values).tolist()
        if values.dtype.kind == "O":
            missing = pd.isna(values)
            if missing.any():
                values = values.copy()
                values[missing] = None
        return values.tolist()
    if isinstance(values, np.generic):
        return values.item()
    return values


def _uuid4_of(digits: str) -> str:
    """32 random hex digits as a UUID4's hex: the version digit set to 4, the variant bits to 10."""
    return f"{digits[:12]}4{digits[13:16]}{_VARIANT_DIGITS[int(digits[16], 16) & 3]}{digits[17:]}"


_VARIANT_DIGITS = "89ab"
# Up to this many ids, string slicing beats numpy's fixed cost (a one-row request is the common case).
_SMALL_BATCH = 32


def uuid4_hex() -> str:
    """A fresh UUID4 as 32 hex digits, as ``uuid.uuid4().hex`` gives, without building a UUID."""
    return _uuid4_of(os.urandom(16).hex())


def prediction_ids(rows: int) -> list[str]:
    """``rows`` fresh UUID4s as 32-character hex strings: the random bytes for all of them come
    from one ``os.urandom`` call; the version and variant bits are set by string slicing for a
    few rows, in one numpy step for many."""
    if rows <= _SMALL_BATCH:
        text = os.urandom(16 * rows).hex()
        return [_uuid4_of(text[i:i + 32]) for i in range(0, 32 * rows, 32)]
    import numpy as np

    raw = np.frombuffer(os.urandom(16 * rows), dtype=np.uint8).reshape(rows, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.tobytes().hex()
    return [text[i:i + 32] for i in range(0, 32 * rows, 32)]
