"""``shipyard monitor``: define monitors, run them, and read what they found."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, client
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.entities.monitor import MonitorEvaluation
    from shipyard.monitoring.service import RunResult

app = typer.Typer(
    help="Watch deployments for drift and falling performance, and tell someone when it happens.\n\n"
         "A monitor compares each window of a deployment's prediction log with a reference (by default "
         "the training data of the version it serves, found through lineage), scores the answers "
         "against the feedback sent for them, and moves its alert state OK -> FIRING -> RESOLVED, "
         "notifying once per change.\n\n"
         "Examples:\n"
         "  shipyard monitor create churn-drift --deployment churn-api --window 1h --reference training \\\n"
         "      --metric f1 --min f1=0.80 --alert webhook:https://hooks.example.com/x --alert log\n"
         "  shipyard monitor create churn-retrain --deployment churn-api --metric f1 --min f1=0.80 \\\n"
         "      --on-alert 'retrain:python retrain.py' --retrain-alias production --retrain-margin 0.01\n"
         "  shipyard monitor run --once\n"
         "  shipyard monitor run --every 5m\n"
         "  shipyard monitor status churn-drift\n"
         "  shipyard monitor report churn-drift --out report.html",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The monitor's name.", show_default=False)]
_STATE_STYLES = {"OK": "green", "FIRING": "bold red", "RESOLVED": "cyan"}
_STATUS_STYLES = {"ok": "green", "breach": "bold red", "no_data": "yellow", "error": "bold yellow"}


def _bounds(values: list[str] | None, option: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or []:
        metric, sep, number = item.partition("=")
        try:
            out[metric.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep or not metric.strip():
            raise InvalidInput(f"{option} {item!r}: expected METRIC=NUMBER, e.g. {option} f1=0.80")
    return out


def _tests(values: list[str] | None) -> dict[str, str]:
    out = {}
    for item in values or []:
        column, sep, spec = item.partition("=")
        if not sep or not column or not spec:
            raise InvalidInput(f"--test {item!r}: expected COLUMN=TEST or COLUMN=TEST:THRESHOLD, e.g. plan=psi:0.25")
        out[column] = spec
    return out


def _state(state: str) -> Text:
    return Text(state, style=_STATE_STYLES.get(state, ""))


def _status(status: str) -> Text:
    return Text(status, style=_STATUS_STYLES.get(status, ""))


def _window(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@app.command()
def create(
    ctx: typer.Context, name: Name,
    deployment: Annotated[str | None, typer.Option(
        "--deployment", "-d", metavar="DEPLOYMENT", show_default=False,
        help="Watch this deployment's prediction log.")] = None,
    current: Annotated[str | None, typer.Option(
        "--current", metavar="DATASET", show_default=False,
        help="Instead of a deployment: compare the latest version of this dataset with the reference.")] = None,
    window: Annotated[str, typer.Option("--window", "-w", metavar="DURATION",
                                        help="Length of each evaluated window, e.g. 15m, 1h, 1d.")] = "1h",
    reference: Annotated[str, typer.Option(
        "--reference", "-r", metavar="training|DATASET@VERSION",
        help="What the inputs are compared with: the training data of the served version (through lineage), "
             "or a dataset version.")] = "training",
    columns: Annotated[list[str] | None, typer.Option(
        "--columns", "-c", metavar="NAMES", show_default=False,
        help="Compare only these input columns (comma-separated, or repeat).")] = None,
    test: Annotated[list[str] | None, typer.Option(
        "--test", "-t", metavar="COLUMN=TEST[:THRESHOLD]", show_default=False,
        help="Override a column's test: ks, chisquare, psi, jensenshannon or wasserstein (repeatable).")] = None,
    alpha: Annotated[float, typer.Option("--alpha", metavar="P",
                                         help="Family-wise false-alarm rate per window.")] = 0.05,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", "-m", metavar="METRIC", show_default=False,
        help="Live performance to compute where feedback exists: accuracy, precision, recall, f1, roc_auc, mae, "
             "rmse (repeatable).")] = None,
    minimum: Annotated[list[str] | None, typer.Option(
        "--min", metavar="METRIC=VALUE", show_default=False,
        help="Fire when a score falls below VALUE, e.g. --min f1=0.80 (repeatable).")] = None,
    maximum: Annotated[list[str] | None, typer.Option(
        "--max", metavar="METRIC=VALUE", show_default=False,
        help="Fire when an error rises above VALUE, e.g. --max rmse=3.5 (repeatable).")] = None,
    alert: Annotated[list[str] | None, typer.Option(
        "--alert", "-a", metavar="webhook:URL|log", show_default=False,
        help="Where state changes go: a webhook (JSON POST, retried) or the log (repeatable).")] = None,
    on_alert: Annotated[list[str] | None, typer.Option(
        "--on-alert", metavar="retrain:COMMAND", show_default=False,
        help="When the monitor fires, train a challenger with COMMAND on the window's labelled rows "
             "($SHIPYARD_RETRAIN_DATA) and promote it if it beats the champion; retrain:pipeline:MODULE:FUNCTION "
             "runs a pipeline instead (repeatable).")] = None,
    retrain_alias: Annotated[str, typer.Option(
        "--retrain-alias", metavar="ALIAS", help="The alias a winning challenger takes (through the registry's "
                                                 "gates and approvals).")] = "production",
    retrain_margin: Annotated[float, typer.Option(
        "--retrain-margin", metavar="AMOUNT", min=0.0,
        help="How much better than the champion, in the monitor's first metric, the challenger must score.")] = 0.0,
    retrain_holdout: Annotated[float, typer.Option(
        "--retrain-holdout", metavar="SHARE",
        help="Share of the window's labelled rows held back from the command to judge both models.")] = 0.3,
    retrain_timeout: Annotated[str, typer.Option(
        "--retrain-timeout", metavar="DURATION", help="Stop a retrain command running longer than this.")] = "1h",
    cooldown: Annotated[str, typer.Option(
        "--cooldown", metavar="DURATION", help="No new FIRING notification this soon after the last one.")] = "1h",
    delay: Annotated[str, typer.Option(
        "--delay", metavar="DURATION",
        help="Evaluate a window this long after it ends, so late feedback counts.")] = "0",
    since: Annotated[str | None, typer.Option(
        "--since", metavar="TIME", show_default=False,
        help="Start with the window holding this time, e.g. 2d or 2024-05-01 \\[default: now].")] = None,
) -> None:
    """Define monitor NAME and build its reference profile (once; it is stored)."""
    names = [n.strip() for item in columns or [] for n in item.split(",") if n.strip()]
    with render.spinner("Building the reference profile"):
        made = client(ctx).monitors.create(
            name, deployment=deployment, current=current, reference=reference, window=window, columns=names,
            tests=_tests(test), alpha=alpha, metrics=metric or [], minimums=_bounds(minimum, "--min"),
            maximums=_bounds(maximum, "--max"), actions=[*(alert or []), *(on_alert or [])], cooldown=cooldown,
            delay=delay, start=since, retrain_alias=retrain_alias, retrain_margin=retrain_margin,
            retrain_holdout=retrain_holdout, retrain_timeout=retrain_timeout)
    render.info(Text.assemble("Created monitor ", (made.name, "bold"), f" of {made.target}: windows of "
                              f"{_window(made.window_seconds)} against {made.reference_dataset}, first window "
                              f"{render.format_time(made.next_window_start)}"))


def _print_results(results: list[RunResult]) -> None:
    from shipyard.monitoring.alerts import display_action

    table = render.make_table("Monitor", "Window", "Status", "State", "Rows", "Drifted", "Metrics", "Alerts",
                              title="Evaluated windows")
    skipped = []
    for result in results:
        if not result.evaluated:
            skipped.append(f"{result.monitor}: {result.skipped}")
        for e in result.evaluated:
            sent = [f"{a.state.value} → {display_action(a.action)}: {a.status}" for a in result.alerts
                    if a.window_start == e.window_start]
            table.add_row(result.monitor, render.format_time(e.window_start), _status(e.status),
                          _state(e.state.value), f"{e.rows:,}", ", ".join(e.drifted_columns),
                          ", ".join(f"{k} {v:.3g}" for k, v in e.metrics.items()), "\n".join(sent) or "")
    if table.row_count:
        render.show(render.with_notes(table, *skipped))
    else:
        render.info("Nothing to evaluate: " + ("; ".join(skipped) if skipped else "no monitors"))


@app.command()
def run(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(metavar="[NAME]...", show_default=False,
                                                      help="Only these monitors \\[default: all].")] = None,
    once: Annotated[bool, typer.Option("--once", help="Evaluate the due windows and exit (the default).")] = False,
    every: Annotated[str | None, typer.Option(
        "--every", metavar="DURATION", show_default=False,
        help="Keep running: evaluate the due windows, wait this long, repeat (Ctrl-C stops).")] = None,
) -> None:
    """Evaluate every due window of the monitors, record the results and send the alerts.

    Several runners (processes, machines) may run at once: each monitor is evaluated by one of
    them at a time, under a lease held in the database, and each window exactly once."""
    from shipyard.monitoring.service import default_owner, parse_window

    if once and every:
        raise InvalidInput("--once and --every exclude each other: choose one")
    pause = parse_window(every, "--every") if every else None
    owner = default_owner()
    service = client(ctx).monitors
    while True:
        with render.spinner("Evaluating due windows"):
            results = service.run_due(names=names or None, owner=owner)
        _print_results(results)
        if pause is None:
            return
        time.sleep(pause)


@app.command("list")
def list_monitors(
    ctx: typer.Context,
    deployment: Annotated[str | None, typer.Option("--deployment", "-d", metavar="DEPLOYMENT", show_default=False,
                                                   help="Only the monitors of this deployment.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List monitors with their alert state."""
    from shipyard.wire import monitor_to_wire

    found = client(ctx).monitors.list(deployment)
    if as_json:
        render.print_json([monitor_to_wire(m) for m in found])
        return
    table = render.make_table("Name", "Watches", "Window", "Reference", "State", "Last evaluation", "Next window")
    for m in found:
        table.add_row(m.name, m.target, _window(m.window_seconds), m.reference_dataset or m.reference,
                      _state(m.state.value), render.format_time(m.last_evaluation_time),
                      render.format_time(m.next_window_start))
    render.show(table if found else Text("No monitors; create one with: shipyard monitor create NAME "
                                         "--deployment DEPLOYMENT"))


def _latest_scores(e: MonitorEvaluation) -> Table:
    table = render.make_table("Column", "Test", "p-value", "Threshold", "Effect", "Drifted", "Status",
                              title=f"Window {render.format_time(e.window_start)}: {e.rows:,} predictions, "
                                    f"{e.labelled:,} with feedback")
    for column, s in e.scores.items():
        table.add_row(column, s.get("test") or render.MISSING, render.format_number(s.get("p_value"), 3),
                      render.format_number(s.get("threshold"), 3), render.format_number(s.get("effect"), 3),
                      Text("yes", style="bold red") if s.get("drifted") else "no", s.get("status", ""))
    return table


@app.command()
def status(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Show a monitor: its definition, alert state, latest window and recent alerts."""
    from shipyard.monitoring.alerts import display_action
    from shipyard.wire import alert_to_wire, evaluation_to_wire, monitor_to_wire

    service = client(ctx).monitors
    m = service.get(name)
    latest = service.history(name, limit=1)
    alerts = service.alerts(name, limit=10)
    if as_json:
        render.print_json({"monitor": monitor_to_wire(m),
                           "latest": evaluation_to_wire(latest[0]) if latest else None,
                           "alerts": [alert_to_wire(a) for a in alerts]})
        return
    facts = render.make_table("", "", title=f"Monitor {m.name}")
    facts.show_header = False
    rules = [f"{k} ≥ {v:g}" for k, v in m.minimums.items()] + [f"{k} ≤ {v:g}" for k, v in m.maximums.items()]
    rows: list[tuple[str, RenderableType]] = [
            ("State", Text.assemble(_state(m.state.value), f" since {render.format_time(m.state_since)}")),
            ("Watches", m.target), ("Window", _window(m.window_seconds)),
            ("Reference", f"{m.reference} ({m.reference_dataset})" if m.reference == "training"
             else m.reference_dataset or m.reference),
            ("Rules", f"drift at alpha {m.alpha:g}" + ("; " + ", ".join(rules) if rules else "")),
            ("Metrics", ", ".join(m.metrics) or render.MISSING),
            ("Alerts", ", ".join(display_action(a) for a in m.actions) or render.MISSING),
            *([("Retraining", f"the challenger takes {m.retrain.alias} when better by {m.retrain.margin:g} on "
                              f"{m.retrain.holdout:.0%} of the window held back")]
              if any(a.startswith("retrain:") for a in m.actions) else []),
            ("Last evaluation", render.format_time(m.last_evaluation_time)),
            ("Next window", render.format_time(m.next_window_start))]
    for key, value in rows:
        facts.add_row(Text(key, style="bold"), value)
    parts: list[RenderableType] = [facts]
    if latest:
        e = latest[0]
        notes = [*(f"Breach: {b}" for b in e.breaches), e.message or None]
        if e.metrics:
            notes.insert(0, "Metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in e.metrics.items()))
        parts.append(render.with_notes(_latest_scores(e), f"Status: {e.status}", *notes))
    if alerts:
        table = render.make_table("Time", "State", "Action", "Delivery", "Attempts", "Detail", title="Recent alerts")
        for a in reversed(alerts):
            table.add_row(render.format_time(a.time), _state(a.state.value), display_action(a.action), a.status,
                          str(a.attempts), a.detail)
        parts.append(table)
    render.show(render.stack(*parts))


@app.command()
def history(
    ctx: typer.Context, name: Name,
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", min=1, help="The latest N windows.")] = 24,
    as_json: JsonOption = False,
) -> None:
    """Every evaluated window of a monitor, newest last."""
    from shipyard.wire import evaluation_to_wire

    found = client(ctx).monitors.history(name, limit=limit)
    if as_json:
        render.print_json([evaluation_to_wire(e) for e in found])
        return
    table = render.make_table("Window", "Status", "State", "Rows", "Labelled", "Drifted", "Metrics", "Why",
                              title=f"Monitor {name}: the latest {len(found)} windows")
    for e in found:
        table.add_row(render.format_time(e.window_start), _status(e.status), _state(e.state.value), f"{e.rows:,}",
                      f"{e.labelled:,}", ", ".join(e.drifted_columns),
                      ", ".join(f"{k} {v:.3g}" for k, v in e.metrics.items()), "; ".join(e.breaches) or e.message)
    render.show(table if found else Text(f"Monitor {name} has not evaluated a window yet; run: shipyard monitor run"))


@app.command()
def report(
    ctx: typer.Context, name: Name,
    out: Annotated[Path, typer.Option("--out", "-o", metavar="PATH", help="Where to write the HTML page.")],
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", min=1,
                                       help="Windows to chart, the latest N.")] = 168,
) -> None:
    """Write a self-contained HTML report: the windows, each column's drift over time, and the
    latest window's distributions against the reference."""
    from shipyard.monitoring.monitor_report import render_monitor

    service = client(ctx).monitors
    monitor = service.get(name)
    page = render_monitor(monitor, service.history(name, limit=limit, with_report=True))
    out.write_text(page, encoding="utf-8")
    render.info(Text.assemble("Wrote ", (str(out), "bold"), f" ({len(page) // 1024 + 1} KiB)"))


@app.command()
def delete(ctx: typer.Context, name: Name) -> None:
    """Delete a monitor with its evaluations and alerts."""
    client(ctx).monitors.delete(name)
    render.info(Text.assemble("Deleted monitor ", (name, "bold")))
