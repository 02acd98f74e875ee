"""``shipyard deploy``: deployments and their rollouts from the command line."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, client
from shipyard.cli.serve import AuthOption, InsecureOption
from shipyard.entities import Batching, Deployment, DeploymentEvent, DeploymentStatus, Resources

app = typer.Typer(
    help="Serve registered model versions under a name, and roll new ones out safely.\n\n"
         "A deployment sends each request to its primary version, or to a canary for a share of the "
         "traffic; shadows get a copy of every request and answer nobody. Every change is a new "
         "revision, recorded with who made it, and can be rolled back.\n\n"
         "Examples:\n"
         "  shipyard deploy create churn-api --model models:/churn@production --env production\n"
         "  shipyard deploy canary churn-api --model models:/churn/7 --weight 10\n"
         "  shipyard deploy shadow churn-api --model models:/churn/8\n"
         "  shipyard deploy promote churn-api\n"
         "  shipyard deploy rollback churn-api\n"
         "  shipyard deploy status churn-api",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The deployment's name.", show_default=False)]
Model = Annotated[str, typer.Option("--model", "-m", metavar="MODEL_URI", show_default=False,
                                    help="models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME/latest "
                                         "(resolved to its version now).")]
Weight = Annotated[int, typer.Option("--weight", "-w", metavar="PERCENT", min=0, max=100,
                                     help="The canary's share of traffic; the primary keeps the rest.")]


def _run(ctx: typer.Context, name: str, change: Callable[[], Deployment]) -> None:
    """Apply ``change`` and say what the deployment now serves (or that nothing changed)."""
    from shipyard.deploy import get_deployment

    before = get_deployment(client(ctx), name).revision
    after = change()
    if after.revision == before:
        render.info(Text.assemble("Unchanged: ", (name, "bold"), f" (revision {after.revision}) already "
                                  f"serves {_serving(after)}"))
    else:
        render.info(Text.assemble((name, "bold"), f" revision {after.revision}: {_serving(after)}"))


# -- changes ---------------------------------------------------------------------------------------
@app.command()
def create(
    ctx: typer.Context, name: Name, model: Model,
    env: Annotated[str, typer.Option("--env", "-e", metavar="ENV",
                                     help="The environment, e.g. production or staging.")] = "default",
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", metavar="ROWS", min=1,
                                                help="Rows per model call (1: no batching).")] = 64,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", metavar="MS", min=0,
                                               help="How long a request waits for its batch to fill.")] = 2.0,
    replicas: Annotated[int, typer.Option("--replicas", metavar="N", min=0,
                                          help="Copies of the serving app.")] = 1,
    cpu: Annotated[str, typer.Option("--cpu", metavar="QUANTITY", show_default=False,
                                     help="CPU per replica, e.g. 500m or 2 \\[default: the platform's]")] = "",
    memory: Annotated[str, typer.Option("--memory", metavar="QUANTITY", show_default=False,
                                        help="Memory per replica, e.g. 512Mi or 4Gi \\[default: the platform's]")] = "",
) -> None:
    """Deploy a registered model version under NAME, answering all of its traffic.

    The model URI is resolved now: models:/churn@production deploys the version the alias points
    to today, and the deployment keeps serving it when the alias moves."""
    from shipyard.deploy import create_deployment

    made = create_deployment(client(ctx), name, model, env, batching=Batching(max_batch_size, max_wait_ms),
                             resources=Resources(replicas, cpu, memory))
    render.info(Text.assemble("Created ", (name, "bold"), f" in {made.environment}: {_serving(made)}"))


@app.command()
def canary(ctx: typer.Context, name: Name, model: Model, weight: Weight = 10) -> None:
    """Send a share of NAME's traffic to another version (replacing any canary)."""
    from shipyard import deploy

    _run(ctx, name, lambda: deploy.canary(client(ctx), name, model, weight))


@app.command()
def weight(
    ctx: typer.Context, name: Name,
    percent: Annotated[int, typer.Argument(metavar="PERCENT", min=0, max=100, show_default=False,
                                           help="The canary's new share of traffic.")],
) -> None:
    """Change the canary's share of traffic (the primary keeps the rest)."""
    from shipyard import deploy

    _run(ctx, name, lambda: deploy.set_weight(client(ctx), name, percent))


@app.command()
def shadow(ctx: typer.Context, name: Name, model: Model) -> None:
    """Mirror every request of NAME to a version; its answers are logged, never returned."""
    from shipyard import deploy

    _run(ctx, name, lambda: deploy.shadow(client(ctx), name, model))


@app.command()
def unshadow(ctx: typer.Context, name: Name, model: Model) -> None:
    """Stop mirroring NAME's requests to a shadow version."""
    from shipyard import deploy

    _run(ctx, name, lambda: deploy.unshadow(client(ctx), name, model))


@app.command()
def promote(ctx: typer.Context, name: Name) -> None:
    """Make the canary the primary, answering all traffic (the old primary stops serving)."""
    from shipyard import deploy

    _run(ctx, name, lambda: deploy.promote(client(ctx), name))


@app.command()
def rollback(ctx: typer.Context, name: Name) -> None:
    """Undo the latest change: restore the state before it, as a new revision.

    Rolling back again undoes the change before that, down to the state NAME was created with."""
    from shipyard import deploy

    _run(ctx, name, lambda: deploy.rollback(client(ctx), name))


@app.command()
def stop(ctx: typer.Context, name: Name) -> None:
    """Stop serving NAME (its versions and weights are kept for start)."""
    from shipyard import deploy

    _run(ctx, name, lambda: deploy.stop(client(ctx), name))


@app.command()
def start(ctx: typer.Context, name: Name) -> None:
    """Serve NAME again after stop."""
    from shipyard import deploy

    _run(ctx, name, lambda: deploy.start(client(ctx), name))


@app.command()
def delete(
    ctx: typer.Context, name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a deployment (its history and lineage stay)."""
    from shipyard.deploy import delete_deployment

    if not yes and not typer.confirm(f"Delete deployment {name}?"):
        raise typer.Exit(1)
    delete_deployment(client(ctx), name)
    render.info(f"Deleted deployment {name}")


# -- serving ---------------------------------------------------------------------------------------
# Internal: how `deploy run --workers N` hands its settings to uvicorn's worker processes.
RUN_WORKER_APP = "shipyard.cli.deploy:run_worker_app"
RUN_WORKER_ENV = "_SHIPYARD_DEPLOY_RUN_WORKER"


@app.command()
def run(
    ctx: typer.Context, name: Name,
    host: Annotated[str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", metavar="N", min=1,
                                         help="Server processes; each loads its own copy of the versions.")] = 1,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", metavar="SECONDS", min=0.05,
                                                help="How often to check NAME for a new revision.")] = 2.0,
    log_predictions: Annotated[bool, typer.Option(
        "--log-predictions/--no-log-predictions",
        help="Keep every prediction in the artifact store (Parquet, see docs/predictions.md) and take "
             "POST /v1/feedback.")] = True,
    auth: AuthOption = False,
    insecure: InsecureOption = False,
) -> None:
    """Serve NAME over HTTP and follow its changes live: canary, shadow, promote, rollback, stop.

    Requests to /v1/models/NAME/predict, /v2/models/NAME/infer and /invocations are split between
    NAME's versions by their weights (sticky per x-shipyard-routing-key header) and mirrored to its
    shadows. A new revision is loaded in the background and swapped in without dropping a
    request. See docs/deployments.md.

    Without --auth anyone who reaches the port may call NAME, so it then listens on this machine
    only unless --insecure says that is meant. See docs/security.md.

    Example: shipyard deploy run churn-api --host 0.0.0.0 --port 8080 --auth"""
    import json
    import tempfile
    from pathlib import Path

    from shipyard.cli import launch
    from shipyard.cli.context import state
    from shipyard.cli.serve import serving_flags, tokens_line

    launch.require_server_extra("prometheus_client", "starlette")
    from shipyard.serving.deployment_app import create_deployment_app

    cli_state = state(ctx)
    settings = cli_state.settings.replace(**serving_flags(auth, insecure))
    launch.check_exposure(host, port, auth=settings.serving_auth, insecure=settings.serving_insecure,
                          what="model server", risk="call the deployment, send feedback into its prediction log "
                                                    "and read its metrics")
    guard = None
    access: dict[str, Any] | None = None
    if settings.serving_auth:  # checked now: a store without users or a server without --auth stops here
        from shipyard.serving.guard import ServingGuard, token_verifier

        project = cli_state.client.store.deployments.get(name).project
        guard = ServingGuard(token_verifier(cli_state.client.store), project,
                             ttl_seconds=settings.serving_token_cache_seconds)
        access = {"project": project, "ttl": settings.serving_token_cache_seconds}
    # Loaded here, before any port opens: a missing deployment or a broken package is one error line.
    served = create_deployment_app(cli_state.client, name, poll_seconds=poll_seconds,
                                   max_body_bytes=settings.server_max_body_bytes, prime=True,
                                   prediction_log=cli_state.client.artifacts if log_predictions else None, guard=guard)
    serving = served.state.serving
    deployment = serving.table.deployment
    render.info(Text.assemble("Serving ", (name, "bold"), f" revision {deployment.revision} "
                              f"({_serving(deployment)}) on ", (launch.listen_url(host, port), "bold green"),
                              f" · {workers} worker{'s' if workers > 1 else ''}"
                              f" · checking for changes every {poll_seconds:g}s · ",
                              tokens_line(access["project"] if access else None)))
    try:
        if workers == 1:
            launch.run(served, host=host, port=port, serving=True)
            return
    finally:
        serving.remove_files()
    if guard is not None:  # each worker checks tokens through a store of its own
        guard.close()
    del served, serving  # the workers load their own copies
    with tempfile.TemporaryDirectory(prefix="shipyard-deploy-run-") as scratch:
        metrics_dir = Path(scratch) / "metrics"
        metrics_dir.mkdir()
        worker = {"tracking_uri": settings.tracking_uri, "artifact_uri": settings.artifact_uri, "name": name,
                  "poll_seconds": poll_seconds, "max_body_bytes": settings.server_max_body_bytes,
                  "metrics_dir": str(metrics_dir), "log_predictions": log_predictions, "access": access}
        launch.run(RUN_WORKER_APP, host=host, port=port, workers=workers, serving=True,
                   env={RUN_WORKER_ENV: json.dumps(worker),
                        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})  # read by prometheus_client in each worker


def run_worker_app() -> object:
    """Factory for the ``uvicorn --factory`` workers of ``deploy run``: settings come from the command."""
    import json
    import os

    from shipyard.cli.serve import worker_guard
    from shipyard.serving.deployment_app import create_deployment_app
    from shipyard.tracking.client import Client

    worker = json.loads(os.environ[RUN_WORKER_ENV])
    shipyard = Client(worker["tracking_uri"], worker["artifact_uri"])
    return create_deployment_app(shipyard, worker["name"], poll_seconds=worker["poll_seconds"],
                                 max_body_bytes=worker["max_body_bytes"], metrics_dir=worker["metrics_dir"],
                                 load_before_serving=True,
                                 prediction_log=shipyard.artifacts if worker["log_predictions"] else None,
                                 guard=worker_guard(worker["access"], shipyard.store))


# -- reading ---------------------------------------------------------------------------------------
@app.command()
def status(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Show what NAME serves: routes with their weights, shadows, batching, resources, revision."""
    from shipyard.deploy import get_deployment

    d = get_deployment(client(ctx), name)
    if as_json:
        render.print_json(d)
        return
    state = Text(d.status.value, style="green" if d.status is DeploymentStatus.ACTIVE else "bold yellow")
    head = _fields(d.name, [
        ("Environment", d.environment), ("Status", state), ("Revision", str(d.revision)),
        ("Batching", f"up to {d.batching.max_batch_size} rows, waiting at most {d.batching.max_wait_ms:g} ms"),
        ("Resources", _resources(d.resources)),
        ("Updated", f"by {d.user or render.MISSING} at {render.format_time(d.last_update_time, seconds=True)}"),
        ("Created", render.format_time(d.creation_time, seconds=True)),
    ])
    routes = render.make_table("Role", "Version", "Traffic", "")
    for i, route in enumerate(d.routes):
        routes.add_row("primary" if i == 0 else "canary", Text(route.uri, style="bold"), f"{route.weight}%",
                       _bar(route.weight))
    for ref in d.shadows:
        routes.add_row("shadow", Text(ref.uri, style="bold"), "mirror", Text("sees all, answers none", style="dim"))
    render.show(render.stack(head, routes))


@app.command()
def history(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Every revision of NAME, oldest first: who changed what, and what it then served."""
    from shipyard.deploy import deployment_history

    events = deployment_history(client(ctx), name)
    if as_json:
        render.print_json(events)
        return
    render.show(_history_table(name, events))


@app.command("list")
def list_deployments(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", metavar="ENV", show_default=False,
                                            help="Only this environment's deployments.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List deployments by name, with what each serves."""
    from shipyard.deploy import list_deployments as find

    found = find(client(ctx), env)
    if as_json:
        render.print_json(found)
        return
    table = render.make_table("Name", "Environment", "Status", "Serving", "Revision", "Updated")
    for d in found:
        table.add_row(Text(d.name, style="bold"), d.environment, d.status.value, _serving(d), str(d.revision),
                      render.format_time(d.last_update_time, compact=True))
    render.show(table if found else Text("No deployments yet: shipyard deploy create NAME --model models:/...",
                                         style="dim"))


@app.command()
def build(
    ctx: typer.Context, name: Name,
    out: Annotated[str, typer.Option("--out", "-o", metavar="DIR", show_default=False,
                                     help="The folder to write into (created when missing).")],
    image: Annotated[str | None, typer.Option("--image", metavar="REPO:TAG", show_default=False,
                                              help="The image the manifests run \\[default: NAME:revREVISION]")] = None,
    max_replicas: Annotated[int | None, typer.Option("--max-replicas", metavar="N", min=1, show_default=False,
                                                     help="The autoscalers' ceiling \\[default: 3 x replicas]")] = None,
) -> None:
    """Write what it takes to run NAME on Kubernetes, from its current revision.

    Files: Dockerfile, requirements.txt, kubernetes.yaml (Deployment, Service, autoscaler), kserve.yaml, README.md.

    The image installs exactly the pinned requirements of every version NAME serves.

    It runs `shipyard deploy run NAME`; SHIPYARD_TRACKING_URI comes from a Secret at run time.

    Build again after a canary, shadow or promote brings in another version.

    Example: shipyard deploy build churn-api --out deploy/ --image registry.example.com/churn-api:1.0"""
    import sys

    from rich.console import Console

    from shipyard.deploy.bundle import build_bundle

    bundle = build_bundle(client(ctx), name, out, image=image, max_replicas=max_replicas)
    render.info(Text.assemble("Built ", (name, "bold"), f" revision {bundle.deployment.revision} for image "
                              f"{bundle.image}:"))
    for path in bundle.paths:
        render.info(f"  {path}")
    for warning in bundle.warnings:
        Console(file=sys.stderr, highlight=False, markup=False).print(Text(f"Warning: {warning}", style="yellow"),
                                                                       soft_wrap=True)


# -- rendering -----------------------------------------------------------------------------------
def _serving(d: Deployment) -> str:
    """``churn/3 90%, churn/7 10% (canary); shadow churn/8``."""
    text = ", ".join(f"{r.model}/{r.version} {r.weight}%" + (" (canary)" if i else "")
                     for i, r in enumerate(d.routes))
    if d.shadows:
        text += "; shadow " + ", ".join(str(s) for s in d.shadows)
    return text + (" [stopped]" if d.status is DeploymentStatus.STOPPED else "")


def _resources(r: Resources) -> str:
    parts = [f"{r.replicas} replica{'s' if r.replicas != 1 else ''}"]
    parts += [f"{label} {value}" for label, value in (("cpu", r.cpu), ("memory", r.memory)) if value]
    return ", ".join(parts)


def _bar(weight: int, width: int = 20) -> Text:
    filled = round(weight * width / 100)
    return Text.assemble(("█" * filled, "cyan"), ("░" * (width - filled), "dim"))


def _fields(title: str, rows: Sequence[tuple[str, str | Text]]) -> Table:
    table = render.make_table("", "", title=title)
    table.show_header = False
    for label, value in rows:
        table.add_row(Text(label, style="bold"), value)
    return table


def _history_table(name: str, events: Sequence[DeploymentEvent]) -> Table:
    table = render.make_table("Revision", "When", "Who", "What", "Serving", "Detail", title=f"History of {name}")
    for e in events:
        table.add_row(Text(str(e.revision), style="bold"), render.format_time(e.timestamp, seconds=True),
                      e.user or render.MISSING, e.kind, _serving(e.deployment), e.detail)
    return table
