"""The parameters of one MLflow API call, read the way MLflow's server reads them: the query
string for GET (and for DELETE without a body), the JSON body otherwise.

:class:`Params` gives typed access with MLflow's own messages for a missing or mistyped
parameter, so the ``mlflow`` client shows its users the errors they already know.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Request

from shipyard.errors import InvalidInput, RequestTooLarge


def _missing(name: str) -> InvalidInput:
    return InvalidInput(f"Missing value for required parameter '{name}'. "
                        "See the API docs for more information about request parameters.")


def _invalid(name: str, value: Any, expected: str) -> InvalidInput:
    return InvalidInput(f"Invalid value {json.dumps(value)[:200]} for parameter '{name}' supplied: "
                        f"expected {expected}")


class Params:
    """Typed getters over a request's parameters; every getter names the parameter it refuses."""

    def __init__(self, data: Mapping[str, Any], lists: Mapping[str, list[str]] | None = None) -> None:
        self._data = data
        self._lists = lists or {}

    def raw(self, name: str) -> Any:
        return self._data.get(name)

    def has(self, name: str) -> bool:
        return self._data.get(name) not in (None, "")

    def str(self, name: str, *, required: bool = False, default: str | None = None,
            aliases: tuple[str, ...] = ()) -> str | None:
        for key in (name, *aliases):
            value = self._data.get(key)
            if value not in (None, ""):
                if not isinstance(value, str):
                    raise _invalid(name, value, "a string")
                return value
        if required:
            raise _missing(name)
        return default

    def required(self, name: builtins.str, *, aliases: tuple[builtins.str, ...] = ()) -> builtins.str:
        value = self.str(name, required=True, aliases=aliases)
        assert value is not None
        return value

    def int(self, name: builtins.str, *, required: bool = False, default: int | None = None) -> int | None:
        value = self._data.get(name)
        if value in (None, ""):
            if required:
                raise _missing(name)
            return default
        if isinstance(value, bool):
            raise _invalid(name, value, "an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _invalid(name, value, "an integer")

    def float(self, name: builtins.str, *, required: bool = False) -> float | None:
        value = self._data.get(name)
        if value in (None, ""):
            if required:
                raise _missing(name)
            return None
        if isinstance(value, bool):
            raise _invalid(name, value, "a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:  # "NaN", "Infinity", "-Infinity": how JSON carries non-finite values
                return float(value)
            except ValueError:
                pass
        raise _invalid(name, value, "a number")

    def list(self, name: builtins.str) -> builtins.list[Any]:
        if name in self._lists:
            return self._lists[name]
        value = self._data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            # A GET with one value of a repeated field has it as a plain string.
            if isinstance(value, str):
                return [value]
            raise _invalid(name, value, "a list")
        return value

    def strings(self, name: builtins.str, *, required: bool = False) -> builtins.list[builtins.str]:
        """A repeated string field (a GET's repeated query parameter or a JSON list), empty
        values left out; with ``required``, MLflow's message when none is given."""
        values = [str(v) for v in self.list(name) if v not in (None, "")]
        if required and not values:
            raise _missing(name)
        return values

    def key_values(self, name: builtins.str) -> dict[builtins.str, builtins.str]:
        """A repeated ``{key, value}`` field as a dict (later duplicates win, as in MLflow)."""
        result: dict[str, str] = {}
        for item in self.list(name):
            if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
                raise _invalid(name, item, "a list of {\"key\": ..., \"value\": ...} objects")
            value = item.get("value", "")
            result[item["key"]] = value if isinstance(value, str) else json.dumps(value)
        return result


async def mlflow_params(request: Request) -> Params:
    """FastAPI dependency: the call's parameters (the body is read here, on the event loop, so
    the handlers can be plain functions run in the thread pool)."""
    query = request.query_params
    lists = {key: query.getlist(key) for key in query if len(query.getlist(key)) > 1}
    data: dict[str, Any] = dict(query)
    if request.method in ("POST", "PATCH", "DELETE", "PUT"):
        try:
            body = await request.body()
        except RequestTooLarge:
            raise
        if body.strip():
            parsed = _parse(body)
            if not isinstance(parsed, dict):
                raise InvalidInput("Malformed request body: expected a JSON object")
            data.update(parsed)
    return Params(data, lists)


def _parse(body: bytes) -> Any:
    """The JSON document in ``body``: orjson first (a log-batch body of 1,000 metrics parses
    several times faster), the standard library for what orjson refuses and it accepts (``NaN``
    literals, integers past 64 bits) and for the error message, so the accepted bodies and the
    errors stay the ones of :func:`json.loads`."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as err:
        what = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise InvalidInput(f"Malformed JSON request body: {what}") from None
