"""The HTTP client shared by the REST store and the REST artifact store.

One pooled ``httpx.Client`` per store (injectable ``transport`` for tests: see
:mod:`shipyard.testing`). Errors come back as the same :mod:`shipyard.errors` classes the
server raised, rebuilt from the JSON body. Retries, with exponential backoff:

- a connection that could not be made (nothing was sent): every request;
- 429 and 503 (the server said it did not do it): every request;
- a response lost after sending (read error, timeout): only requests that are safe to repeat
  (GET, PUT, DELETE, and appending metric values, whose worst case is a repeated value).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from json import dumps
from typing import Any
from urllib.parse import quote

import httpx

from shipyard.errors import (
    InvalidInput,
    NotFound,
    ShipyardError,
    StoreUnavailable,
    Unauthenticated,
    error_class_for_code,
)

__all__ = ["API", "BACKOFF", "PROJECT_HEADER", "RETRY_STATUS", "HttpClient", "auth_headers", "response_body",
           "retry_after", "segment", "url_path"]

RETRY_STATUS = frozenset({429, 503})
BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0)
API = "/api/v1"


_JSON_HEADERS = {"content-type": "application/json"}


def _encode_json(body: Any) -> bytes:
    """``body`` as the JSON a request carries; ``InvalidInput`` when it holds NaN or an infinite
    number, which JSON cannot represent (the SQL stores refuse them the same way)."""
    try:
        return dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except ValueError as err:
        if "float" not in str(err):
            raise
        raise InvalidInput("the request holds NaN or an infinite number, which JSON cannot carry: "
                           "send finite numbers, or None for none") from None


PROJECT_HEADER = "X-Shipyard-Project"


def auth_headers(token: str | None = None, project: str | None = None,
                 basic: tuple[str, str] | None = None) -> dict[str, str]:
    """The headers that say who is calling: a bearer ``token`` (or ``basic`` user and password,
    which ``shipyard login`` sends once to get a token) and the ``project`` new objects go to."""
    headers: dict[str, str] = {}
    if basic is not None:
        user, password = basic
        headers["authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    elif token:
        headers["authorization"] = f"Bearer {_header_value(token, 'the API token (SHIPYARD_TRACKING_TOKEN)')}"
    if project:
        headers[PROJECT_HEADER.lower()] = _header_value(project, "the project (SHIPYARD_PROJECT)")
    return headers


def _header_value(value: str, what: str) -> str:
    text = value.strip()
    if not text or not all(33 <= ord(c) < 127 for c in text):
        raise InvalidInput(f"{what} must be printable ASCII without spaces; check it was copied whole")
    return text


class HttpClient:
    """Calls to one server's API, with the retry rules above, as the principal of ``token``
    (or of ``basic`` credentials) and, with ``project``, creating in that project."""

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None, timeout: float = 30.0,
                 retries: int = 5, *, token: str | None = None, project: str | None = None,
                 basic: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout,
                                   limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
                                   headers={"user-agent": "shipyard-rest-store",
                                            **auth_headers(token, project, basic)})
        self.retries = min(retries, len(BACKOFF))

    def call(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
             idempotent: bool | None = None) -> Any:
        repeatable = method in ("GET", "PUT", "DELETE") if idempotent is None else idempotent
        content = None if json is None else _encode_json(json)  # once, not per attempt
        headers = _JSON_HEADERS if content is not None else None
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.client.request(method, path, content=content, headers=headers, params=params)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last or (sent and not repeatable):
                    raise StoreUnavailable(f"cannot reach the Shipyard server at {self.base_url}: "
                                           f"{type(exc).__name__}: {exc}") from exc
                time.sleep(BACKOFF[attempt])
                continue
            if response.status_code in RETRY_STATUS and not last:
                time.sleep(retry_after(response) or BACKOFF[attempt])
                continue
            return response_body(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.client.close()


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return min(float(value), 30.0) if value.replace(".", "", 1).isdigit() else None


def response_body(response: httpx.Response) -> Any:
    """The JSON body of a successful response; the server's error, rebuilt, otherwise. A 401
    says how to sign in, unless the request was itself a sign-in with a user and password."""
    if response.is_success:
        return response.json() if response.content else None
    try:
        body = response.json()
        cls = error_class_for_code(body["error_code"])
        error = cls(body.get("message", response.reason_phrase), **(body.get("details") or {}))
    except (ValueError, KeyError, TypeError):
        error = ShipyardError(f"the server answered {response.status_code} {response.reason_phrase}: "
                              f"{response.text[:500]}")
        if response.status_code == 401:
            error = Unauthenticated(f"the server answered 401 {response.reason_phrase}")
    if isinstance(error, Unauthenticated) and not _sent_password(response):
        server = str(response.request.url.copy_with(path="", query=None, fragment=None)).rstrip("/")
        error = Unauthenticated(f"{error.message}; sign in with: shipyard login {server} (or set "
                                "SHIPYARD_TRACKING_TOKEN to an API token)", **error.details)
    raise error


def _sent_password(response: httpx.Response) -> bool:
    authorization: str = response.request.headers.get("authorization", "")
    return authorization.lower().startswith("basic ")


def segment(value: str, kind: str = "experiment") -> str:
    """A name, alias or id as one URL path segment: nothing in it can change which route is
    meant. ``.`` and ``..`` are spelled ``%2E``: left literal, the HTTP client would resolve them
    as relative path steps and call another route."""
    text = "" if value is None else str(value)
    if not text:
        raise NotFound(f"{kind} {value!r} does not exist")
    quoted = quote(text, safe="")
    return quoted.replace(".", "%2E") if set(text) == {"."} else quoted


def url_path(value: str) -> str:
    """A slash-separated path (an artifact path, a tag key) with its slashes kept."""
    return quote(value, safe="/")
