"""Which Store implementation serves a tracking URI, chosen by its scheme.

Built-ins are ``(scheme, "module:attribute")`` entries imported only when selected, so
``import shipyard`` never pays for SQLAlchemy; third parties add schemes through the
``shipyard.stores`` entry-point group.
"""

from __future__ import annotations

import importlib
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.store.protocol import Store

BUILTIN_STORES: tuple[tuple[str, str], ...] = (
    ("sqlite", "shipyard.store.sql:SqlStore"),
    ("postgresql", "shipyard.store.sql:SqlStore"),
    ("postgres", "shipyard.store.sql:SqlStore"),
    ("http", "shipyard.store.rest:RestStore"),
    ("https", "shipyard.store.rest:RestStore"),
)


def _scheme(uri: str) -> str:
    scheme, sep, _ = uri.partition("://")
    return scheme.split("+", 1)[0].lower() if sep else ""


def _plugin_stores() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group="shipyard.stores")}


def resolve_store_factory(uri: str) -> Any:
    scheme = _scheme(uri)
    target = dict(BUILTIN_STORES).get(scheme) or _plugin_stores().get(scheme)
    if target is None:
        known = sorted({s for s, _ in BUILTIN_STORES} | set(_plugin_stores()))
        raise InvalidInput(f"no tracking store for {uri!r}: unsupported scheme {scheme or '(none)'!r}; "
                           f"supported: {', '.join(known)} (e.g. sqlite:///./.shipyard/shipyard.db)")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def open_store(uri: str, **options: Any) -> Store:
    """Open the Store for ``uri`` (``options`` go to the implementation)."""
    store: Store = resolve_store_factory(uri)(uri, **options)
    return store
