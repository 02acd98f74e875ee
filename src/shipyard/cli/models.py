"""``shipyard models``: the model registry from the command line."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, client, parse_key_values
from shipyard.entities import ModelVersion, RegistryEvent

if TYPE_CHECKING:
    from shipyard.tracking.client import Client

app = typer.Typer(
    help="Register models, move aliases, approve and promote versions, evaluate them.\n\n"
         "A model is named NAME; a version NAME VERSION, or by URI: models:/NAME/3, models:/NAME@production, "
         "models:/NAME/latest.\n\n"
         "Examples:\n"
         "  shipyard models register runs:/3f2a.../model churn\n"
         "  shipyard models alias churn staging 3\n"
         "  shipyard models tag churn 3 --set team=growth --delete draft\n"
         "  shipyard models approve churn 3 --comment \"offline eval reviewed\"\n"
         "  shipyard models promote churn 3 --to production --require \"metrics.f1 >= 0.85\" "
         "--compare-to production\n"
         "  shipyard models evaluate models:/churn/3 --data test.parquet --target y\n"
         "  shipyard models history churn",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The registered model's name.", show_default=False)]
Version = Annotated[int, typer.Argument(metavar="VERSION", help="The version number.", show_default=False,
                                        min=1)]
ModelUri = Annotated[str, typer.Argument(metavar="MODEL_URI", show_default=False,
                                         help="models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest "
                                              "or runs:/RUN_ID/PATH.")]
FilterOption = Annotated[str, typer.Option("--filter", "-f", metavar="TEXT", show_default=False,
                                           help="Keep those matching, e.g. \"tags.team = 'growth'\".")]
MaxResults = Annotated[int, typer.Option("--max-results", "-n", metavar="N", help="Show at most this many.")]


# -- models ------------------------------------------------------------------------------
@app.command("list")
def list_models(ctx: typer.Context, filter_string: FilterOption = "", max_results: MaxResults = 100,
                as_json: JsonOption = False) -> None:
    """List registered models by name, with their latest version and aliases."""
    found = client(ctx).search_registered_models(filter_string or None, max_results=max_results)
    if as_json:
        render.print_json(list(found))
        return
    table = render.make_table("Name", "Latest", "Aliases", "Updated", "Description")
    for m in found:
        table.add_row(Text(m.name, style="bold"), str(m.latest_version or render.MISSING), _aliases(m.aliases),
                      render.format_time(m.last_update_time, compact=True), m.description)
    render.show(render.with_notes(table, "more models match: raise --max-results" if found.token else None))


@app.command()
def show(
    ctx: typer.Context, name: Name,
    version: Annotated[int | None, typer.Argument(metavar="[VERSION]", min=1, show_default=False,
                                                  help="Show this version: source, approval, flavor, "
                                                       "signature, requirements.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a model (aliases, protected aliases, versions), or one version of it."""
    c = client(ctx)
    if version is not None:
        _show_version(c, name, version, as_json)
        return
    model = c.get_registered_model(name)
    found = list(c.search_model_versions(f"name = '{_quote(name)}'", max_results=20))
    if as_json:
        render.print_json({"model": model, "versions": found})
        return
    head = _fields(model.name, [
        ("Description", model.description or render.MISSING),
        ("Tags", ", ".join(f"{k}={v}" for k, v in model.tags.items()) or render.MISSING),
        ("Aliases", _aliases(model.aliases, model.protected_aliases)),
        ("Protected", ", ".join(model.protected_aliases) or "none"),
        ("Created", render.format_time(model.creation_time, seconds=True)),
    ])
    render.show(render.stack(head, _versions_table(found)))


def _show_version(c: Client, name: str, number: int, as_json: bool) -> None:
    v = c.get_model_version(name, number)
    manifest = c.get_model_manifest(v.uri)
    if as_json:
        render.print_json({"version": v, "manifest": manifest})
        return
    approval = (f"{v.approval.user} at {render.format_time(v.approval.timestamp, seconds=True)}"
                + (f": {v.approval.comment}" if v.approval.comment else "")) if v.approval else "not approved"
    flavor = Text(manifest.flavor)
    if manifest.pickle_based:
        flavor.append("  pickle-based: loading it runs code from the file; load only models you trust",
                      style="bold yellow")
    rows = [
        ("Status", v.status.value), ("Aliases", ", ".join(v.aliases) or render.MISSING),
        ("Approval", approval), ("Source", v.source), ("Run", v.run_id or render.MISSING),
        ("Description", v.description or render.MISSING),
        ("Tags", ", ".join(f"{k}={val}" for k, val in v.tags.items()) or render.MISSING),
        ("Flavor", flavor), ("Python", manifest.python_version),
        ("Requirements", ", ".join(manifest.requirements) or render.MISSING),
        ("Created", render.format_time(v.creation_time, seconds=True)),
    ]
    if manifest.signature is not None:
        rows.insert(-1, ("Signature", _signature_text(manifest.signature)))
    render.show(_fields(f"{name} version {number}", rows))


@app.command()
def versions(ctx: typer.Context, name: Name, filter_string: FilterOption = "", max_results: MaxResults = 100,
             as_json: JsonOption = False) -> None:
    """List a model's versions, newest first (filter on version, status, run_id, source, tags)."""
    text = f"name = '{_quote(name)}'" + (f" and {filter_string}" if filter_string else "")
    c = client(ctx)
    c.get_registered_model(name)  # NotFound names the model rather than printing an empty table
    found = c.search_model_versions(text, max_results=max_results)
    if as_json:
        render.print_json(list(found))
        return
    render.show(_versions_table(found))


@app.command()
def register(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(metavar="RUNS_URI", show_default=False,
                                             help="The logged model: runs:/RUN_ID/PATH.")],
    name: Name,
    description: Annotated[str, typer.Option("--description", "-d", help="What this version is.")] = "",
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", metavar="KEY=VALUE",
                                                  help="Tag the version; repeat for more.")] = None,
) -> None:
    """Register a model logged by a run as the next version of NAME (created if new)."""
    version = client(ctx).register_model(model_uri, name, description=description,
                                         tags=parse_key_values(tag, "--tag"))
    render.info(Text.assemble("Registered ", (f"{name} version {version.version}", "bold"),
                              f" from {version.source}"))


@app.command()
def alias(
    ctx: typer.Context,
    name: Name,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. staging, production, champion.",
                                              show_default=False)],
    version: Annotated[int | None, typer.Argument(metavar="[VERSION]", show_default=False, min=1,
                                                  help="Point the alias at this version.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    protect: Annotated[bool | None, typer.Option(
        "--protect/--unprotect", show_default=False,
        help="Require (or stop requiring) an approval before a version takes the alias.")] = None,
) -> None:
    """Point an alias at a version, move it, delete it, or protect it."""
    c = client(ctx)
    if sum((version is not None, delete, protect is not None)) != 1:
        raise typer.BadParameter("give exactly one of VERSION, --delete, --protect or --unprotect",
                                 param_hint="'ALIAS'")
    if delete:
        c.delete_alias(name, alias_name)
        render.info(f"Deleted alias {alias_name} of {name}")
    elif protect is not None:
        c.protect_alias(name, alias_name, protect)
        render.info(f"Alias {alias_name} of {name} is now {'protected' if protect else 'unprotected'}")
    else:
        assert version is not None
        c.set_alias(name, alias_name, version)
        render.info(Text.assemble(f"{name}@{alias_name} → ", (f"version {version}", "bold")))


@app.command()
def tag(
    ctx: typer.Context,
    name: Name,
    version: Annotated[int | None, typer.Argument(metavar="[VERSION]", min=1, show_default=False,
                                                  help="Tag this version instead of the model.")] = None,
    set_tags: Annotated[list[str] | None, typer.Option("--set", "-t", metavar="KEY=VALUE", show_default=False,
                                                       help="Set a tag (repeatable).")] = None,
    delete_keys: Annotated[list[str] | None, typer.Option("--delete", metavar="KEY", show_default=False,
                                                          help="Delete a tag (repeatable).")] = None,
) -> None:
    """Set or delete tags of a model, or of one of its versions."""
    tags = parse_key_values(set_tags, "--set")
    if not tags and not delete_keys:
        raise typer.BadParameter("give --set KEY=VALUE or --delete KEY (each repeatable)", param_hint="'--set'")
    c = client(ctx)
    what = f"{name} version {version}" if version else name
    for key, value in tags.items():
        if version is None:
            c.set_registered_model_tag(name, key, value)
        else:
            c.set_model_version_tag(name, version, key, value)
    for key in delete_keys or []:
        if version is None:
            c.delete_registered_model_tag(name, key)
        else:
            c.delete_model_version_tag(name, version, key)
    changed = [f"{k}={v}" for k, v in tags.items()] + [f"-{k}" for k in delete_keys or []]
    render.info(f"Tags of {what}: {', '.join(changed)}")


@app.command()
def approve(
    ctx: typer.Context, name: Name, version: Version,
    comment: Annotated[str, typer.Option("--comment", "-m", help="Why it is approved.")] = "",
) -> None:
    """Approve a version, so that it may take protected aliases (production by default)."""
    approved = client(ctx).approve_model_version(name, version, comment=comment)
    assert approved.approval is not None
    render.info(f"Approved {name} version {version} (by {approved.approval.user})")


@app.command()
def promote(
    ctx: typer.Context,
    name: Name,
    version: Version,
    to: Annotated[str, typer.Option("--to", metavar="ALIAS", show_default=False,
                                    help="The alias to move, e.g. production.")],
    require: Annotated[list[str] | None, typer.Option(
        "--require", "-r", metavar="EXPR", show_default=False,
        help="A gate on the version's metrics, e.g. \"metrics.f1 >= 0.85\"; repeat for more.")] = None,
    compare_to: Annotated[str | None, typer.Option(
        "--compare-to", metavar="ALIAS", show_default=False,
        help="Compare with the version holding this alias (the champion).")] = None,
    compare_metric: Annotated[list[str] | None, typer.Option(
        "--compare-metric", metavar="METRIC", show_default=False,
        help="Also compare this metric with the champion (default: the --require metrics).")] = None,
    max_regression: Annotated[float, typer.Option(
        "--max-regression", metavar="FRACTION",
        help="How much worse than the champion a metric may be (0.01 = 1%).")] = 0.01,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the gates, move nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Move an alias to a version only if its quality gates pass; exit 1 and say why otherwise."""
    result = client(ctx).promote_model(name, version, to, require=require or (), compare_to=compare_to,
                                       compare_metrics=compare_metric or (), max_regression=max_regression,
                                       dry_run=dry_run)
    if as_json:
        render.print_json(result)
    else:
        table = render.make_table("Gate", "Candidate", "Reference", "Result", "Why",
                                  title=f"Promote {name} version {version} to {to}")
        for gate in result.gates:
            table.add_row(gate.gate, render.format_number(gate.candidate), render.format_number(gate.reference),
                          Text("pass", style="green") if gate.passed else Text("FAIL", style="bold red"),
                          gate.reason)
        if result.promoted:
            verdict = f"Promoted: {name}@{to} → version {version}"
        elif result.passed:
            verdict = "All gates pass (dry run: nothing moved)"
        else:
            verdict = f"Not promoted: {len(result.failures)} gate(s) failed"
        render.show(table if result.gates else Text("No gates given."), Text(verdict, style="bold"))
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    ctx: typer.Context,
    model_uri: ModelUri,
    data: Annotated[Path, typer.Option("--data", "-d", metavar="FILE", show_default=False,
                                       help="Labelled data: a .parquet or .csv file.")],
    target: Annotated[str, typer.Option("--target", "-t", metavar="COLUMN", show_default=False,
                                        help="The column holding the true labels.")],
    model_type: Annotated[str | None, typer.Option(
        "--model-type", metavar="TYPE", show_default=False,
        help="classifier or regressor \\[default: inferred from the model and the labels]")] = None,
    experiment: Annotated[str | None, typer.Option(
        "--experiment", "-e", metavar="ID_OR_NAME", show_default=False,
        help="Log the evaluation run here \\[default: the experiment of the model's run]")] = None,
    as_json: JsonOption = False,
) -> None:
    """Compute a model's metrics on labelled data and log them as an evaluation run.

    Classifiers get accuracy, precision, recall, F1, ROC AUC and log loss (with probabilities)
    and a confusion matrix plot; regressors MAE, RMSE, R² and a residual plot. For a registered
    version the run is linked to it, and `promote --require` gates use these metrics."""
    c = client(ctx)
    experiment_id = c.resolve_experiment(experiment).experiment_id if experiment else None
    with render.spinner(f"Evaluating {model_uri} on {data.name}"):
        result = c.evaluate_model(model_uri, data, target=target, model_type=model_type,
                                  experiment_id=experiment_id)
    if as_json:
        render.print_json(result)
        return
    table = render.make_table("Metric", "Value", title=f"{result.model_type.capitalize()} {model_uri} on {data.name}")
    for key, value in result.metrics.items():
        table.add_row(key, render.format_number(value))
    render.show(render.with_notes(table, f"Logged as run {result.run_id}: shipyard runs show {result.run_id}",
                                  *(f"Plot: {a}" for a in result.artifacts)))


@app.command()
def card(
    ctx: typer.Context, name: Name, version: Version,
    regenerate: Annotated[bool, typer.Option("--regenerate", help="Rebuild it from the version's run, "
                                             "package and evaluation (replaces edits).")] = False,
    set_from: Annotated[Path | None, typer.Option(
        "--set", metavar="FILE", show_default=False,
        help="Store this Markdown file as the card (after editing).")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Print the Markdown source instead of rendering it.")] = False,
) -> None:
    """Show a version's model card (generated and stored on first use), or store an edited one.

    To edit one: shipyard models card churn 3 --raw > card.md, edit card.md, then
    shipyard models card churn 3 --set card.md"""
    c = client(ctx)
    if set_from is not None:
        try:
            text = set_from.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(f"cannot read {set_from}: {exc}", param_hint="'--set'") from None
        c.set_model_card(name, version, text)
        render.info(f"Stored the model card of {name} version {version} from {set_from}")
        return
    text = c.model_card(name, version, regenerate=regenerate)
    if raw:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        render.show(Markdown(text))


@app.command()
def history(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Every change to a model, oldest first: versions, aliases moved, approvals, tags."""
    events = client(ctx).model_history(name)
    if as_json:
        render.print_json(events)
        return
    table = render.make_table("When", "Who", "What", "Version", "Alias", "Detail", title=f"History of {name}")
    for e in events:
        table.add_row(render.format_time(e.timestamp, seconds=True), e.user or render.MISSING,
                      e.kind.replace("_", " "), _version_move(e), e.alias or "", e.detail)
    render.show(table)


@app.command()
def download(
    ctx: typer.Context, model_uri: ModelUri,
    dst: Annotated[Path, typer.Option("--dst", "-o", metavar="DIR", help="Where to put the model folder.")] = Path(),
) -> None:
    """Download a model's package folder (files, MLmodel manifest with digests)."""
    folder = client(ctx).download_model(model_uri, dst)
    render.info(f"Downloaded {model_uri} to {folder}")


@app.command()
def delete(
    ctx: typer.Context, name: Name,
    version: Annotated[int | None, typer.Argument(metavar="[VERSION]", min=1, show_default=False,
                                                  help="Delete only this version.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Also when aliases point to it (they are removed).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a version, or a whole model with all its versions (refused while aliased, unless --force)."""
    what = f"{name} version {version}" if version else f"model {name} and all its versions"
    if not yes and not typer.confirm(f"Delete {what}?"):
        raise typer.Exit(1)
    c = client(ctx)
    if version is None:
        c.delete_registered_model(name, force=force)
    else:
        c.delete_model_version(name, version, force=force)
    render.info(f"Deleted {what}")


# -- rendering -----------------------------------------------------------------------------
def _quote(text: str) -> str:
    return text.replace("'", "''")


def _aliases(aliases: Mapping[str, int], protected: Sequence[str] = ()) -> str:
    return ", ".join(f"{a}{' (protected)' if a in protected else ''} → v{v}"
                     for a, v in aliases.items()) or render.MISSING


def _fields(title: str, rows: Sequence[tuple[str, str | Text]]) -> Table:
    table = render.make_table("", "", title=title)
    table.show_header = False
    for label, value in rows:
        table.add_row(Text(label, style="bold"), value)
    return table


def _signature_text(signature: Mapping[str, Any]) -> str:
    """``x: float64, z: float64 → int64``: the columns of the inputs and outputs schemas."""
    def columns(schema: Any) -> str:
        if not isinstance(schema, Mapping):
            return render.MISSING
        return ", ".join(f"{c.get('name') or 'tensor'}: {c.get('dtype')}" for c in schema.get("columns", []))

    return f"{columns(signature.get('inputs'))} → {columns(signature.get('outputs'))}"


def _versions_table(found: Iterable[ModelVersion]) -> Table:
    table = render.make_table("Version", "Status", "Aliases", "Approved", "Run", "Created", "Description")
    for v in found:
        table.add_row(Text(str(v.version), style="bold"), v.status.value, ", ".join(v.aliases),
                      v.approval.user if v.approval else "", v.run_id or "",
                      render.format_time(v.creation_time, compact=True), v.description)
    return table


def _version_move(e: RegistryEvent) -> str:
    if e.previous_version is not None and e.version is not None:
        return f"{e.previous_version} → {e.version}"
    if e.previous_version is not None:
        return f"was {e.previous_version}"
    return "" if e.version is None else str(e.version)
