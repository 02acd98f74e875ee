"""``shipyard serve MODEL_URI``: answer predictions for one model over HTTP, with uvicorn.

The model is resolved, fetched and loaded (digests verified) here, before any port is opened, so
a bad URI or a broken package stops the command with one message. A ``models:/`` URI is pinned to
the version its alias names at start. With one worker the loaded model is served by this process;
with ``--workers N`` the package folder fetched here is loaded by each worker (uvicorn starts them
from an import string, so their settings travel in one environment variable) before it accepts a
connection, since the workers share one socket; Prometheus runs in multiprocess mode over a folder
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
from shipyard.cli.context import state

__all__ = ["WORKER_APP", "serve", "worker_app"]

WORKER_APP = "shipyard.cli.serve:worker_app"
# Internal: how the command hands the model and options to uvicorn's worker processes.
WORKER_ENV = "_SHIPYARD_SERVE_WORKER"


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
) -> None:
    """Serve a model over HTTP: native, Open Inference Protocol v2 and MLflow /invocations.

    Stop it with Ctrl-C (or SIGTERM): requests in flight finish first. Bodies over
    $SHIPYARD_SERVER_MAX_BODY_BYTES are refused with 413. See docs/serving.md.

    Examples:
      shipyard serve models:/churn@production --port 8080
      shipyard serve models:/churn/3 --host 0.0.0.0 --workers 4
      shipyard serve runs:/RUN_ID/model --max-batch-size 1
    """
    launch.require_server_extra("prometheus_client", "starlette")
    from shipyard.serving.models import load_served

    cli_state = state(ctx)
    max_body_bytes = cli_state.settings.server_max_body_bytes
    with tempfile.TemporaryDirectory(prefix="shipyard-serve-") as scratch:
        served = load_served(cli_state.client, model_uri, name=name, dst_path=Path(scratch) / "model")
        cli_state.close()  # the tracking store is not needed while serving
        batching = (f"batches of up to {max_batch_size} rows, waiting up to {max_wait_ms:g} ms"
                    if max_batch_size > 1 and max_wait_ms > 0 else "batching off")
        render.info(Text.assemble(
            "Serving ", (served.name, "bold"), f" version {served.version} ({served.flavor}) on ",
            (launch.listen_url(host, port), "bold green"),
            f" · {workers} worker{'s' if workers > 1 else ''} · {batching}"))
        if workers == 1:
            from shipyard.serving.app import create_serving_app

            app = create_serving_app([served], max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                                     max_body_bytes=max_body_bytes)
            launch.run(app, host=host, port=port, serving=True)
            return
        metrics_dir = Path(scratch) / "metrics"
        metrics_dir.mkdir()
        worker = {"path": str(served.path), "name": served.name, "version": served.version, "uri": served.uri,
                  "max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms, "max_body_bytes": max_body_bytes,
                  "metrics_dir": str(metrics_dir)}
        del served  # the workers load their own copies
        os.environ[WORKER_ENV] = json.dumps(worker)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # read by prometheus_client in each worker
        launch.run(WORKER_APP, host=host, port=port, workers=workers, serving=True)


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
                              load_before_serving=True)
