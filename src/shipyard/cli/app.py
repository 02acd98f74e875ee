"""The root ``shipyard`` command: global options, the command groups, and the error boundary.

:class:`ShipyardGroup` is the one place errors become exit codes: a
:class:`~shipyard.errors.ShipyardError` prints ``Error: <message>`` on stderr and exits with
the class's ``exit_code``; Ctrl-C exits with 130. Usage errors stay click's (exit 2), and
any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from shipyard.cli import (
    artifacts,
    audit,
    config,
    datasets,
    db,
    deploy,
    drift,
    experiments,
    gc,
    info,
    init,
    lineage,
    login,
    models,
    monitor,
    pipeline,
    predictions,
    projects,
    render,
    reproduce,
    runs,
    serve,
    server,
    tokens,
    tune,
    ui,
    users,
)
from shipyard.cli.context import State, setting_help
from shipyard.errors import ShipyardError

__all__ = ["ShipyardGroup", "app", "main"]

INTERRUPTED_EXIT_CODE = 130


class ShipyardGroup(TyperGroup):
    """The root group; every command runs inside its :meth:`invoke`."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            try:
                return super().invoke(ctx)
            finally:
                if isinstance(ctx.obj, State):
                    ctx.obj.close()
        except ShipyardError as err:
            render.error(str(err))
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            render.error("interrupted")
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None


app = typer.Typer(
    name="shipyard",
    cls=ShipyardGroup,
    help="Shipyard: track experiments, runs, metrics and artifacts; register and promote models.\n\n"
         "Run 'shipyard COMMAND --help' for the options of a command.\n\n"
         "Examples:\n"
         "  shipyard experiments list\n"
         "  shipyard runs list --experiment mnist --filter \"metrics.loss < 0.3\"\n"
         "  shipyard runs show 3f2a9c0e41d84b0c9d1f6a2b7c3e5d80\n"
         "  shipyard --tracking-uri sqlite:///runs.db runs list",
    epilog="The tracking URI and every other setting can also come from SHIPYARD_* environment "
           "variables; see: shipyard config show",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    tracking_uri: Annotated[str | None, typer.Option(
        "--tracking-uri", metavar="URI", show_default=False,
        help=setting_help("Tracking database, e.g. sqlite:///path/to.db", "tracking_uri"))] = None,
    artifact_uri: Annotated[str | None, typer.Option(
        "--artifact-uri", metavar="URI", show_default=False,
        help=setting_help("Artifact store folder", "artifact_uri", otherwise="beside the database"))] = None,
) -> None:
    ctx.obj = State(tracking_uri=tracking_uri, artifact_uri=artifact_uri)


app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(models.app, name="models")
app.add_typer(datasets.app, name="datasets")
app.add_typer(lineage.app, name="lineage")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(deploy.app, name="deploy")
app.add_typer(predictions.app, name="predictions")
app.add_typer(monitor.app, name="monitor")
app.add_typer(db.app, name="db")
app.add_typer(config.app, name="config")
app.add_typer(users.app, name="users", rich_help_panel="Access control")
app.add_typer(tokens.app, name="tokens", rich_help_panel="Access control")
app.add_typer(projects.app, name="projects", rich_help_panel="Access control")
app.add_typer(audit.app, name="audit", rich_help_panel="Access control")
app.command("login", rich_help_panel="Access control")(login.login)
app.command("logout", rich_help_panel="Access control")(login.logout)
app.command("whoami", rich_help_panel="Access control")(login.whoami)
app.command("reproduce")(reproduce.reproduce)
app.command("gc")(gc.gc)
app.command("drift")(drift.drift)
app.command("server")(server.serve)
app.command("serve")(serve.serve)
app.command("ui")(ui.ui)
app.command("tune")(tune.tune)
app.command("init")(init.init)
app.command("version", rich_help_panel="Other")(info.version)


def main() -> None:
    """Entry point of the ``shipyard`` console script."""
    app(prog_name="shipyard")
