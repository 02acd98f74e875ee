"""Plumbing shared by every command: settings, the lazily opened Client, shared options.

The root callback puts one :class:`State` on the click context. Settings are resolved from
the global options and the environment on first use (``Settings.resolve``, the one source
of truth for ``SHIPYARD_*`` variables), and the Client, which opens the database, only when
a command asks for it: ``shipyard version`` and ``--help`` never import SQLAlchemy.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.config import SETTINGS, Settings
from shipyard.entities import ViewType

if TYPE_CHECKING:
    from shipyard.tracking.client import Client

__all__ = ["JsonOption", "State", "View", "ViewOption", "client", "parse_key_values", "setting_help", "state"]


def setting_help(text: str, name: str, *, otherwise: str | None = None, via: str = "") -> str:
    """Help for an option that sets the setting ``name``: ``text``, then where the value comes
    from when the option is not given, read from the settings table (so its environment variable
    and default are written once). ``otherwise`` says the default in words where it is computed;
    ``via`` names a broader option that comes first."""
    setting = next(s for s in SETTINGS if s.name == name)
    default = otherwise if otherwise is not None else (setting.default or "none")
    sources = ", ".join(part for part in (via, f"${setting.env_var}", f"else {default}") if part)
    return f"{text} \\[default: {sources}]"


class State:
    """What the global options resolve to, built once per invocation."""

    def __init__(self, tracking_uri: str | None = None, artifact_uri: str | None = None) -> None:
        self._arguments: dict[str, Any] = {"tracking_uri": tracking_uri, "artifact_uri": artifact_uri}
        self._settings: Settings | None = None
        self._client: Client | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.resolve(**self._arguments)
        return self._settings

    @property
    def client(self) -> Client:
        if self._client is None:
            from shipyard.tracking.client import Client

            self._client = Client(settings=self.settings)
        return self._client

    def close(self) -> None:
        """Release the Client's database connections, if it was ever opened."""
        if self._client is not None:
            client, self._client = self._client, None
            client.close()


def state(ctx: typer.Context) -> State:
    found = ctx.find_object(State)
    if found is None:  # a sub-app invoked on its own (tests); behave like the root
        found = ctx.obj = State()
    return found


def client(ctx: typer.Context) -> Client:
    return state(ctx).client


class View(enum.StrEnum):
    """The ``--view`` choices of listings."""

    ACTIVE = "active"
    DELETED = "deleted"
    ALL = "all"

    @property
    def view_type(self) -> ViewType:
        return {View.ACTIVE: ViewType.ACTIVE_ONLY, View.DELETED: ViewType.DELETED_ONLY,
                View.ALL: ViewType.ALL}[self]


def parse_key_values(values: list[str] | None, option: str) -> dict[str, str]:
    """``["k=v", ...]`` to a dict; a usage error (exit 2) names an item without ``=``."""
    parsed: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=f"'{option}'")
        parsed[key.strip()] = value
    return parsed


JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout.")]
ViewOption = Annotated[View, typer.Option("--view", help="Which to include: active, deleted or all.",
                                          case_sensitive=False)]
