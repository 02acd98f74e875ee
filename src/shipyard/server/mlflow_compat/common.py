"""What every MLflow route module shares: the response helper, run-id parameters, paging and
MLflow's limits, each in one place."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from shipyard.errors import InvalidInput
from shipyard.server.mlflow_compat.request import Params
from shipyard.server.mlflow_compat.wire import compact
from shipyard.server.responses import json_response
from shipyard.store.sql.search import decode_page_token, encode_page_token

MAX_SEARCH_RESULTS = 50_000


def ok(payload: dict[str, Any] | None = None) -> Response:
    """proto3 JSON: ``{}`` for a void call, and empty fields (an empty page, no next token)
    left out.

    Written with orjson: a search page of a thousand runs is ~0.7 MB, which the standard library
    took longer to write than the search took to run. Every float here has been through
    :func:`shipyard.wire.encode_float` (non-finite values travel as strings), so orjson's writing
    NaN as ``null`` never applies; what orjson cannot write (an integer past 64 bits) goes the
    old way."""
    fields = compact(payload or {})
    try:
        body = orjson.dumps(fields)
    except orjson.JSONEncodeError:
        return json_response(fields)
    return Response(body, media_type="application/json")


def run_id_of(p: Params) -> str:
    """MLflow clients send both ``run_id`` and the older ``run_uuid``."""
    return p.required("run_id", aliases=("run_uuid",))


def max_results(p: Params, default: int, limit: int = MAX_SEARCH_RESULTS) -> int:
    value = p.int("max_results", default=default)
    assert value is not None
    if not 1 <= value <= limit:
        raise InvalidInput(f"Invalid value {value} for parameter 'max_results' supplied. "
                           f"It must be at most {limit} and at least 1")
    return value


def page(items: list[Any], p: Params, default_max: int,
         limit: int = MAX_SEARCH_RESULTS) -> tuple[list[Any], str | None]:
    """One page of a list computed whole (experiments, metric history) and the next token;
    the token is the same opaque offset token the stores use, so a garbage one is a 400."""
    size = max_results(p, default_max, limit)
    offset = decode_page_token(p.str("page_token"))
    chunk = items[offset:offset + size]
    more = offset + size < len(items)
    return chunk, encode_page_token(offset + size) if more else None
