"""One way to start an HTTP process: ``shipyard server``, ``shipyard serve`` and ``shipyard deploy run``.

Each gives an app (or, with ``--workers N``, an import string of an app factory that every worker
process calls) and its address; this module checks the server extra is installed, says where it
listens, and runs uvicorn with the logging the kind of process needs.
"""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Mapping
from typing import Any

from shipyard.addresses import is_loopback
from shipyard.errors import InvalidInput, ShipyardError

__all__ = ["check_exposure", "is_loopback", "listen_url", "require_server_extra", "run"]

def require_server_extra(*modules: str) -> None:
    """Import uvicorn (and ``modules``) now, so a missing extra is one clear message, not a traceback."""
    import importlib

    try:
        for name in ("uvicorn", *modules):
            importlib.import_module(name)
    except ImportError:
        raise ShipyardError('this command needs the server extra: pip install "shipyard-mlops[server]"') from None


def listen_url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def check_exposure(host: str, port: int, *, auth: bool, insecure: bool, risk: str, what: str) -> None:
    """Refuse to let anyone who reaches a non-loopback address ``risk`` (what they could do), unless
    ``auth`` protects it or ``insecure`` says it is meant (an authenticating proxy in front of the
    ``what``, a lab network); then warn, saying what it means."""
    if auth or is_loopback(host):
        return
    if not insecure:
        raise InvalidInput(
            f"refusing to listen on {host} without --auth: anyone who can reach port {port} could {risk}. Start "
            f"with --auth (users, tokens and roles; see docs/security.md), or add --insecure if something in front "
            f"of the {what} already checks who may use it")
    from rich.text import Text

    from shipyard.cli import render

    render.info(Text(
        f"Warning: --insecure: listening on {host} without authentication. Anyone who can reach port {port} can "
        f"{risk}, and nothing records who did. Use --auth unless a proxy in front of the {what} authenticates "
        "every request.", style="bold yellow"))


def _serving_log_config() -> dict[str, Any]:
    """uvicorn's logging setup plus Shipyard's serving loggers (uvicorn applies it in every worker)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["shipyard.serving"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def run(app: Any, *, host: str, port: int, workers: int = 1, serving: bool = False,
        env: Mapping[str, str] | None = None) -> None:
    """Serve ``app`` until stopped. ``workers`` > 1 needs ``app`` to be the import string of a
    factory (each worker builds its own); where ``SO_REUSEPORT`` exists each worker gets its own
    listening socket (:mod:`shipyard.cli.reuseport`). ``serving``: a prediction server, which keeps
    uvicorn's access log off (the serving app writes its own, off the event loop) and logs
    ``shipyard.serving``. ``env``: variables the workers read (their settings), set in this
    process's environment, which they inherit, while they run, and restored after (a command run
    in-process, as tests do, leaves none behind pointing at its deleted scratch folder)."""
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        _run(app, host=host, port=port, workers=workers, serving=serving)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run(app: Any, *, host: str, port: int, workers: int, serving: bool) -> None:
    import uvicorn

    from shipyard.cli import reuseport

    options: dict[str, Any] = {"host": host, "port": port}
    if serving:
        options.update(log_config=_serving_log_config(), access_log=False)
    else:
        options["log_level"] = "info"
    if workers > 1 and hasattr(socket, "SO_REUSEPORT"):  # a socket per worker, so connections spread (#20)
        reuseport.run(app, factory=True, workers=workers, **options)
    elif workers > 1 or isinstance(app, str):
        uvicorn.run(app, factory=True, workers=workers, **options)
    else:
        uvicorn.run(app, **options)
