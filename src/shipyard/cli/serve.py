"""``shipyard serve MODEL_URI``: answer predictions for one model over HTTP, with uvicorn.

The model is resolved, fetched and loaded (digests verified) here, before any port is opened, so
a bad URI or a broken package stops the command with one message. A ``models:/`` URI is pinned to
the version its alias names at start. With one worker the loaded model is served by this process;
with ``--workers N`` the package folder fetched here is loaded by each worker (uvicorn starts them
from an import string, so their settings travel in one environment variable) before it accepts a
connection, since any worker may be handed the next one (each listens on its own ``SO_REUSEPORT``
socket of the same port: :mod:`shipyard.cli.reuseport`); Prometheus runs in multiprocess mode over a folder
they share so that ``/metrics`` covers every worker.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import launch, render
from shipyard.cli.context import setting_help, state
from shipyard.entities.auth import DEFAULT_PROJECT

__all__ = ["SERVING_RISK", "WORKER_APP", "AuthOption", "InsecureOption", "serve", "serving_flags", "tokens_line",
           "worker_app", "worker_guard"]

WORKER_APP = "shipyard.cli.serve:worker_app"
# Internal: how the command hands the model and options to uvicorn's worker processes.
WORKER_ENV = "_SHIPYARD_SERVE_WORKER"
# What anyone could do to a model server without --auth.
SERVING_RISK = "call the model and read its metrics"
# The options of `serve` and `deploy run` that decide who may call them.
AuthOption = Annotated[bool, typer.Option(
    "--auth", help=setting_help("Require an API token (Bearer) with a role in the project of what is served, on "
                                "every route but the health probes.", "serving_auth", otherwise="off"))]
InsecureOption = Annotated[bool, typer.Option(
    "--insecure", help=setting_help("Allow a non-loopback --host without --auth (anyone who reaches the port may "
                                    "call what is served).", "serving_insecure", otherwise="off"))]


def serve(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(
        metavar="MODEL_URI", show_default=False,
        help="The model: models:/NAME@ALIAS, models:/NAME/VERSION, models:/NAME/latest, runs:/RUN_ID/PATH, "
             "or a local model folder.")],
    host: Annotated[str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, metavar="N", help="Server processes; each loads its own copy of the model.")] = 1,
    max_batch_size: Annotated[int, typer.Option(
        "--max-batch-size", min=1, metavar="ROWS",
        help="Most rows gathered from concurrent requests into one predict call; 1 turns batching off.")] = 64,
    max_wait_ms: Annotated[float, typer.Option(
        "--max-wait-ms", min=0.0, metavar="MS",
        help="Longest a request waits for others to share its batch; 0 turns batching off.")] = 2.0,
    name: Annotated[str | None, typer.Option(
        "--name", metavar="NAME", show_default=False,
        help="Name to serve the model under \\[default: the registered model's name, else the folder's]")] = None,
    auth: AuthOption = False,
    insecure: InsecureOption = False,
) -> None:
    """Serve a model over HTTP: native, Open Inference Protocol v2 and MLflow /invocations.

    Stop it with Ctrl-C (or SIGTERM): requests in flight finish first. Bodies over
    $SHIPYARD_SERVER_MAX_BODY_BYTES are refused with 413. See docs/serving.md.

    Without --auth anyone who reaches the port may call the model, so it then listens on this
    machine only unless --insecure says that is meant. See docs/security.md.

    Examples:
      shipyard serve models:/churn@production --port 8080
      shipyard serve models:/churn/3 --host 0.0.0.0 --workers 4 --auth
      shipyard serve runs:/RUN_ID/model --max-batch-size 1
    """
    launch.require_server_extra("prometheus_client", "starlette")
    from shipyard.serving.models import load_served

    cli_state = state(ctx)
    settings = cli_state.settings.replace(**serving_flags(auth, insecure))
    launch.check_exposure(host, port, auth=settings.serving_auth, insecure=settings.serving_insecure,
                          what="model server", risk=SERVING_RISK)
    max_body_bytes = settings.server_max_body_bytes
    with tempfile.TemporaryDirectory(prefix="shipyard-serve-") as scratch:
        served = load_served(cli_state.client, model_uri, name=name, dst_path=Path(scratch) / "model")
        guard = None
        access: dict[str, Any] | None = None
        if settings.serving_auth:
            from shipyard.serving.guard import ServingGuard, served_project, token_verifier

            project = served_project(cli_state.client, served.uri, settings.project or DEFAULT_PROJECT)
            access = {"project": project, "ttl": settings.serving_token_cache_seconds,
                      "tracking_uri": settings.tracking_uri}
            # Built here even for workers: a store without users, or a server that does not check
            # tokens, stops the command now. The store checks the tokens, so it stays open.
            guard = ServingGuard(token_verifier(cli_state.client.store), project,
                                 ttl_seconds=settings.serving_token_cache_seconds)
        else:
            cli_state.close()  # the tracking store is not needed while serving
        batching = (f"batches of up to {max_batch_size} rows, waiting up to {max_wait_ms:g} ms"
                    if max_batch_size > 1 and max_wait_ms > 0 else "batching off")
        render.info(Text.assemble(
            "Serving ", (served.name, "bold"), f" version {served.version} ({served.flavor}) on ",
            (launch.listen_url(host, port), "bold green"),
            f" · {workers} worker{'s' if workers > 1 else ''} · {batching} · ",
            tokens_line(access["project"] if access else None)))
        if workers == 1:
            from shipyard.serving.app import create_serving_app

            app = create_serving_app([served], max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                                     max_body_bytes=max_body_bytes, guard=guard)
            try:
                launch.run(app, host=host, port=port, serving=True)
            finally:
                cli_state.close()
            return
        if guard is not None:  # each worker opens the store itself, to check tokens
            guard.close()
        cli_state.close()
        metrics_dir = Path(scratch) / "metrics"
        metrics_dir.mkdir()
        worker = {"path": str(served.path), "name": served.name, "version": served.version, "uri": served.uri,
                  "max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms, "max_body_bytes": max_body_bytes,
                  "metrics_dir": str(metrics_dir), "access": access}
        del served  # the workers load their own copies
        launch.run(WORKER_APP, host=host, port=port, workers=workers, serving=True,
                   env={WORKER_ENV: json.dumps(worker),
                        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})  # read by prometheus_client in each worker


def worker_app() -> Any:
    """Factory for ``uvicorn --factory`` workers: the model and options come from the command."""
    from shipyard.models.package import load_model_folder
    from shipyard.serving.app import create_serving_app
    from shipyard.serving.models import ServedModel

    worker = json.loads(os.environ[WORKER_ENV])

    def load() -> list[ServedModel]:
        return [ServedModel(worker["name"], worker["version"], load_model_folder(worker["path"]), uri=worker["uri"])]

    return create_serving_app(load, max_batch_size=worker["max_batch_size"], max_wait_ms=worker["max_wait_ms"],
                              max_body_bytes=worker["max_body_bytes"], metrics_dir=worker["metrics_dir"],
                              load_before_serving=True, guard=worker_guard(worker["access"]))


def serving_flags(auth: bool, insecure: bool) -> dict[str, bool]:
    """The settings ``--auth`` and ``--insecure`` set when given (else the environment's stand)."""
    return {k: v for k, v in (("serving_auth", auth), ("serving_insecure", insecure)) if v}


def tokens_line(project: str | None) -> Text:
    """What the startup line says of sign-in: who may call, or that anyone may."""
    if project is None:
        return Text("no token needed", style="bold yellow")
    return Text.assemble("API tokens required (project ", (project, "bold"), ")")


def worker_guard(access: dict[str, Any] | None, store: Any = None) -> Any:
    """The guard of a worker process (``access`` as the command passed it), checking tokens against
    ``store`` (default: one of its own, at the command's tracking URI)."""
    if access is None:
        return None
    from shipyard.serving.guard import ServingGuard, token_verifier

    if store is None:
        from shipyard.tracking.client import Client

        store = Client(access["tracking_uri"]).store
    return ServingGuard(token_verifier(store), access["project"], ttl_seconds=access["ttl"])
