"""One typed settings object, declared once as a table.

Each :class:`Setting` has a name, type, default and help. The same table feeds the
environment variable names (``SHIPYARD_<NAME>``), the CLI's ``config show`` and the docs.
Precedence: an explicit argument > the environment > the default. Every resolved value
remembers where it came from (``Settings.sources``).

``Settings`` is built once at the edge (CLI start, SDK first use, server start) and passed
down; nothing below the edge reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shipyard.errors import InvalidInput

__all__ = ["SETTINGS", "Setting", "Settings", "Source", "user_cache_folder"]

Source = Literal["argument", "env", "default"]


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of true/false, 1/0, yes/no, on/off")


def _parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected a whole number above 0")
    return value


def _parse_positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("expected a number above 0")
    return value


@dataclass(frozen=True)
class Setting:
    """One configurable value: its name, how to parse it from text, its default and help."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str

    @property
    def env_var(self) -> str:
        return f"SHIPYARD_{self.name.upper()}"


SETTINGS: tuple[Setting, ...] = (
    Setting("tracking_uri", str, "sqlite:///./.shipyard/shipyard.db",
            "Where runs are tracked: sqlite:///path, postgresql://user@host/db."),
    Setting("artifact_uri", str, "./.shipyard/artifacts",
            "Where artifact bytes are stored: a folder, s3://bucket/prefix, gs://..., or a server's http(s) URL."),
    Setting("tracking_token", str, "",
            "API token sent to an http(s) tracking server; empty: the one `shipyard login` kept for that server."),
    Setting("project", str, "",
            "Project that new experiments, models and datasets go to on a server with --auth; empty: the default."),
    Setting("acting_user", str, "",
            "The user name recorded on changes made through a database URI (runs, registered versions, aliases, "
            "datasets, deployments, monitors; empty: the OS login); a tracking server ignores it and records "
            "the signed-in user."),
    Setting("writer_queue_size", _parse_positive_int, 100_000,
            "Most metrics waiting in the background writer; logging blocks when it is full."),
    Setting("writer_batch_size", _parse_positive_int, 5_000,
            "Most metrics the background writer sends in one transaction."),
    Setting("writer_linger_seconds", _parse_positive_float, 0.05,
            "How long the background writer waits to gather a batch after the first metric."),
    Setting("sqlite_busy_timeout_seconds", _parse_positive_float, 60.0,
            "How long a SQLite write waits for another process's lock before retrying."),
    Setting("capture_git", _parse_bool, True,
            "Record the git commit, branch, remote and dirty flag at start_run."),
    Setting("capture_diff", _parse_bool, True,
            "Store the uncommitted git diff as an artifact at start_run."),
    Setting("capture_diff_max_bytes", _parse_positive_int, 5_000_000,
            "Largest uncommitted diff stored; a larger one is cut and marked as cut."),
    Setting("capture_packages", _parse_bool, True,
            "Store the installed package versions as an artifact at start_run."),
    Setting("capture_system", _parse_bool, True,
            "Record Python version, OS, hostname, user and entry point at start_run."),
    Setting("server_allowed_hosts", str, "localhost,127.0.0.1,::1",
            "Host headers the server answers (comma-separated; * for any), against DNS rebinding."),
    Setting("server_cors_origins", str, "",
            "Origins allowed to call the server from a browser (comma-separated); empty: CORS off."),
    Setting("server_max_body_bytes", _parse_positive_int, 16 * 1024 * 1024,
            "Largest JSON request body the server accepts (artifact uploads are streamed, no limit)."),
    Setting("server_auth", _parse_bool, False,
            "Require sign-in: users, API tokens and per-project roles (shipyard server --auth)."),
    Setting("server_insecure", _parse_bool, False,
            "Let the server listen beyond this machine without --auth: anyone who reaches it may do anything."),
    Setting("server_run_monitors", _parse_bool, True,
            "The server evaluates due monitors itself, in the background of each worker (a lease keeps it once)."),
    Setting("server_monitor_interval_seconds", _parse_positive_float, 60.0,
            "How often the server looks for due monitor windows."),
    Setting("serving_auth", _parse_bool, False,
            "Serving (shipyard serve, deploy run) needs an API token for all but its health probes (--auth)."),
    Setting("serving_insecure", _parse_bool, False,
            "Let serving listen beyond this machine without --auth: anyone who reaches it may call the model."),
    Setting("serving_token_cache_seconds", _parse_positive_float, 5.0,
            "How long serving with --auth trusts a token it checked; a revoked token is refused after at most this."),
    Setting("server_oidc_issuer", str, "",
            "OpenID Connect provider for single sign-on in the web UI (its issuer URL); empty: off. Needs --auth."),
    Setting("server_oidc_client_id", str, "",
            "The client id this server was registered with at the OpenID Connect provider."),
    Setting("server_oidc_client_secret", str, "",
            "The client secret from the provider; empty: a public client (PKCE alone)."),
    Setting("server_oidc_scopes", str, "openid email profile",
            "Scopes asked of the OpenID Connect provider (space-separated; openid is always sent)."),
    Setting("server_oidc_username_claim", str, "preferred_username",
            "ID token claim that names a user made at first single sign-on (then email, then sub)."),
    Setting("server_oidc_provider_name", str, "",
            "Name on the web UI's 'Sign in with …' button; empty: the issuer's host name."),
    Setting("server_oidc_redirect_uri", str, "",
            "Callback URL registered at the provider; empty: this server's URL + /ui/oidc/callback."),
    Setting("server_oidc_grants", str, "",
            "Roles of a user made at first single sign-on, as PROJECT:ROLE,...; empty: none."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build it with :meth:`Settings.resolve`."""

    tracking_uri: str = _BY_NAME["tracking_uri"].default
    artifact_uri: str = _BY_NAME["artifact_uri"].default
    # repr=False: a secret must not appear in logs or tracebacks that print the settings.
    tracking_token: str = field(default=_BY_NAME["tracking_token"].default, repr=False)
    project: str = _BY_NAME["project"].default
    acting_user: str = _BY_NAME["acting_user"].default
    writer_queue_size: int = _BY_NAME["writer_queue_size"].default
    writer_batch_size: int = _BY_NAME["writer_batch_size"].default
    writer_linger_seconds: float = _BY_NAME["writer_linger_seconds"].default
    sqlite_busy_timeout_seconds: float = _BY_NAME["sqlite_busy_timeout_seconds"].default
    capture_git: bool = _BY_NAME["capture_git"].default
    capture_diff: bool = _BY_NAME["capture_diff"].default
    capture_diff_max_bytes: int = _BY_NAME["capture_diff_max_bytes"].default
    capture_packages: bool = _BY_NAME["capture_packages"].default
    capture_system: bool = _BY_NAME["capture_system"].default
    server_allowed_hosts: str = _BY_NAME["server_allowed_hosts"].default
    server_cors_origins: str = _BY_NAME["server_cors_origins"].default
    server_max_body_bytes: int = _BY_NAME["server_max_body_bytes"].default
    server_auth: bool = _BY_NAME["server_auth"].default
    server_insecure: bool = _BY_NAME["server_insecure"].default
    server_run_monitors: bool = _BY_NAME["server_run_monitors"].default
    server_monitor_interval_seconds: float = _BY_NAME["server_monitor_interval_seconds"].default
    serving_auth: bool = _BY_NAME["serving_auth"].default
    serving_insecure: bool = _BY_NAME["serving_insecure"].default
    serving_token_cache_seconds: float = _BY_NAME["serving_token_cache_seconds"].default
    server_oidc_issuer: str = _BY_NAME["server_oidc_issuer"].default
    server_oidc_client_id: str = _BY_NAME["server_oidc_client_id"].default
    server_oidc_client_secret: str = field(default=_BY_NAME["server_oidc_client_secret"].default, repr=False)
    server_oidc_scopes: str = _BY_NAME["server_oidc_scopes"].default
    server_oidc_username_claim: str = _BY_NAME["server_oidc_username_claim"].default
    server_oidc_provider_name: str = _BY_NAME["server_oidc_provider_name"].default
    server_oidc_redirect_uri: str = _BY_NAME["server_oidc_redirect_uri"].default
    server_oidc_grants: str = _BY_NAME["server_oidc_grants"].default
    sources: Mapping[str, Source] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def resolve(cls, env: Mapping[str, str] | None = None, **arguments: Any) -> Settings:
        """Resolve every setting: an argument that is not ``None`` wins, then the environment,
        then the default. Raises :class:`~shipyard.errors.InvalidInput` naming the variable
        when an environment value cannot be parsed."""
        env = os.environ if env is None else env
        unknown = set(arguments) - set(_BY_NAME)
        if unknown:
            raise InvalidInput(f"unknown setting(s): {', '.join(sorted(unknown))}; "
                               f"known: {', '.join(_BY_NAME)}")
        values: dict[str, Any] = {}
        sources: dict[str, Source] = {}
        for setting in SETTINGS:
            if arguments.get(setting.name) is not None:
                values[setting.name] = arguments[setting.name]
                sources[setting.name] = "argument"
            elif setting.env_var in env:
                raw = env[setting.env_var]
                try:
                    values[setting.name] = setting.parse(raw)
                except ValueError as exc:
                    raise InvalidInput(f"{setting.env_var}={raw!r} is not valid: {exc}") from None
                sources[setting.name] = "env"
            else:
                values[setting.name] = setting.default
                sources[setting.name] = "default"
        return cls(**values, sources=sources)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values replaced (their source becomes ``argument``)."""
        argument: Source = "argument"
        sources = {**self.sources, **dict.fromkeys(changes, argument)}
        return dataclasses.replace(self, **changes, sources=sources)

    def describe(self) -> list[tuple[str, Any, Source, str]]:
        """``(name, value, source, help)`` for every setting, in table order."""
        return [(s.name, getattr(self, s.name), self.sources.get(s.name, "default"), s.help)
                for s in SETTINGS]


def user_cache_folder(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/shipyard``, else ``~/.cache/shipyard``: caches that can be deleted at any
    time (file digests, the installed distributions)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"  # the spec ignores relative values
    return root / "shipyard"
