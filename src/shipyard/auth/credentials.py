"""The tokens ``shipyard login`` keeps for the user, one per server, in the user's config folder.

The file is ``$XDG_CONFIG_HOME/shipyard/credentials.json`` (``~/.config/shipyard/…`` when the
variable is unset), readable by its owner only (mode 0600, its folder 0700), and holds API tokens
keyed by server URL, never a password. It is rewritten whole through a temporary file and a
rename, so a crash or a second ``shipyard login`` at the same moment leaves the old file or the new
one, never half of each.

The SDK reads it (:func:`stored_token`) when ``SHIPYARD_TRACKING_TOKEN`` is unset, so signing in
once is enough for scripts as well as for the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shipyard.errors import InvalidInput

__all__ = [
    "credentials_path",
    "forget_token",
    "load_credentials",
    "save_token",
    "server_key",
    "stored_entry",
    "stored_token",
]

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the credentials file is, following the XDG base-directory convention."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME", "").strip()
    # A relative XDG_CONFIG_HOME is invalid by the spec and is ignored, as the spec says.
    folder = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return folder / "shipyard" / "credentials.json"


def server_key(url: str) -> str:
    """The key a server's entry is kept under: scheme and host in lower case, no trailing slash,
    so ``HTTP://Host:5000/`` and ``http://host:5000`` are one server."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"{url!r} is not a server URL: expected http(s)://host[:port], "
                           "e.g. http://localhost:5000")
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def load_credentials(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every server's entry (``{}`` when there is no file yet). Raises ``InvalidInput`` naming the
    file when it is not what ``shipyard login`` writes."""
    path = path or credentials_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        servers = json.loads(text)["servers"]
        if not isinstance(servers, dict) or not all(isinstance(e, dict) for e in servers.values()):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"{path} is not a Shipyard credentials file; delete it and sign in again with: "
                           "shipyard login URL") from None
    return servers


def stored_entry(url: str, path: Path | None = None) -> dict[str, Any] | None:
    """The entry of the server at ``url`` (token, user, token_id, expires), if signed in."""
    try:
        key = server_key(url)
    except InvalidInput:
        return None  # a SQL tracking URI: nothing to sign in to
    return load_credentials(path).get(key)


def stored_token(url: str, path: Path | None = None) -> str | None:
    """The token kept for the server at ``url``, or ``None``."""
    entry = stored_entry(url, path)
    token = entry.get("token") if entry else None
    return token if isinstance(token, str) and token else None


def save_token(url: str, token: str, *, user: str, token_id: str, expires: int | None = None,
               path: Path | None = None) -> Path:
    """Keep ``token`` for the server at ``url`` (replacing an older one); returns the file's path."""
    path = path or credentials_path()
    servers = load_credentials(path)
    servers[server_key(url)] = {"token": token, "user": user, "token_id": token_id, "expires": expires}
    _write(path, servers)
    return path


def forget_token(url: str, path: Path | None = None) -> dict[str, Any] | None:
    """Drop the entry of the server at ``url``; returns it (``None``: there was none)."""
    path = path or credentials_path()
    servers = load_credentials(path)
    entry = servers.pop(server_key(url), None)
    if entry is not None:
        _write(path, servers)
    return entry


def _write(path: Path, servers: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    text = json.dumps({"servers": dict(servers)}, indent=2, sort_keys=True) + "\n"
    # mkstemp creates the file with mode 0600 before anything is written to it, so the token is
    # never readable by others, not even for a moment.
    fd, temporary = tempfile.mkstemp(prefix=".credentials-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
