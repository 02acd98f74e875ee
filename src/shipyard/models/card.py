"""Model cards: a Markdown page per model version, built from what the store recorded.

:func:`render_card` gathers the version (description, aliases, status, approval), the run that
logged it (params, latest metrics, git state from :mod:`shipyard.tracking.capture`), its latest
evaluation (the run named by the version tag ``shipyard.evaluation_run``, see
:mod:`shipyard.models.evaluate`) and the package manifest (signature, requirements, flavor,
pickle-based). Only the ``MLmodel`` file of the package is downloaded, never the model itself.

:func:`card` returns the stored card, rendering and storing it the first time (or on
``regenerate=True``); :func:`set_card` stores an edited one. Every value put in a table is
escaped, so a ``|`` or a newline in a param cannot break the table.

Domain code: every function takes the :class:`~shipyard.models.registry.RegistryService` of the
acting principal (who is recorded as the card's editor), or a ``Client``, the SDK's spelling,
whose registry is used (:func:`~shipyard.models.registry.as_registry`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.models.evaluate import EVALUATION_RUN_TAG
from shipyard.models.registry import HasRegistry, RegistryService, as_registry

if TYPE_CHECKING:
    from shipyard.entities import ModelVersion, Run
    from shipyard.models.manifest import ModelManifest
    from shipyard.models.signature import Schema

__all__ = ["card", "escape_cell", "render_card", "set_card"]

# Characters CommonMark could read as markup inside a table cell, and the cell separator; ``_``
# only where it can open or close emphasis (``learning_rate`` stays as it is).
_MARKUP = re.compile(r"[\\`*\[\]<>|~&]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_DATASET_WORDS = frozenset({"data", "dataset", "datasets"})
_DIFF_ARTIFACT = "_shipyard/git.diff"


def card(registry: RegistryService | HasRegistry, name: str, version: int, *, regenerate: bool = False) -> str:
    """The stored model card of ``name`` version ``version``; rendered with :func:`render_card`
    and stored when the version has none yet, or when ``regenerate`` (an edited card is then
    replaced). Raises ``NotFound`` for an unknown model or version."""
    service = as_registry(registry)
    found = service.get_model_version(name, version)
    if found.card and not regenerate:
        return found.card
    text = _render(service, found)
    _store(service, found, text)
    return text


def set_card(registry: RegistryService | HasRegistry, name: str, version: int, text: str) -> ModelVersion:
    """Store ``text`` (Markdown) as the version's card, replacing the stored one; an empty text
    clears it, so the next :func:`card` renders a fresh one. Raises ``NotFound`` and
    ``InvalidInput`` when ``text`` is not a string."""
    if not isinstance(text, str):
        raise InvalidInput(f"a model card is Markdown text, got {type(text).__name__}")
    service = as_registry(registry)
    return _store(service, service.get_model_version(name, version), text)


def render_card(registry: RegistryService | HasRegistry, name: str, version: int) -> str:
    """A fresh Markdown card for ``name`` version ``version`` (nothing is stored). Raises
    ``NotFound`` for an unknown model or version; a missing run, evaluation run or manifest is
    said in the card instead."""
    service = as_registry(registry)
    return _render(service, service.get_model_version(name, version))


def escape_cell(value: Any) -> str:
    """``value`` as text safe inside a GitHub Markdown table cell: markup characters and ``|``
    are backslash-escaped and line breaks become spaces."""
    return " ".join(_MARKUP.sub(lambda match: "\\" + match.group(0), str(value)).splitlines())


def _store(registry: RegistryService, version: ModelVersion, text: str) -> ModelVersion:
    return registry.update_model_version(version.name, version.version, card=text)


# -- rendering -------------------------------------------------------------------------------------

def _render(registry: RegistryService, version: ModelVersion) -> str:
    model = registry.get_registered_model(version.name)
    run = _find_run(registry, version.run_id)
    evaluation_id = version.tags.get(EVALUATION_RUN_TAG)
    evaluation = _find_run(registry, evaluation_id)
    manifest = _manifest(registry, version.source)
    parts = [
        f"# {escape_cell(version.name)} — version {version.version}",
        "\n\n".join(d.strip() for d in (model.description, version.description) if d.strip()),
        _overview(version),
        _training(registry, version, run),
        _code(registry, run),
        _params(run),
        _metrics(run),
        _evaluation(evaluation_id, evaluation),
        _signature(manifest),
        _requirements(manifest),
        _lineage(version, run, evaluation),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _overview(version: ModelVersion) -> str:
    aliases = ", ".join(sorted(version.aliases)) or "none"
    if version.approval is None:
        approval = "not approved"
    else:
        approval = f"approved by {version.approval.user} on {_when(version.approval.timestamp)}"
        if version.approval.comment:
            approval += f": {version.approval.comment}"
    rows = [("Model", version.name), ("Version", version.version), ("Aliases", aliases),
            ("Status", version.status.value), ("Approval", approval), ("Created", _when(version.creation_time)),
            ("Source", version.source)]
    return "## Overview\n\n" + _table(("Field", "Value"), rows)


def _training(registry: RegistryService, version: ModelVersion, run: Run | None) -> str:
    if run is None:
        return (f"## Training run\n\nThe run that logged this version ({version.run_id or 'unknown'}) "
                "is not in the store.")
    info = run.info
    try:
        experiment = registry.store.experiments.get(info.experiment_id).name
    except NotFound:
        experiment = "(deleted)"
    rows: list[tuple[str, Any]] = [
        ("Run ID", info.run_id), ("Run name", info.run_name), ("Experiment", f"{experiment} (id {info.experiment_id})"),
        ("Status", info.status.value), ("Started", _when(info.start_time)),
    ]
    if info.user_id:
        rows.append(("User", info.user_id))
    if run.data.tags.get("shipyard.note"):
        rows.append(("Note", run.data.tags["shipyard.note"]))
    return "## Training run\n\n" + _table(("Field", "Value"), rows)


def _code(registry: RegistryService, run: Run | None) -> str:
    if run is None:
        return ""
    tags = run.data.tags
    labels = (("Commit", "shipyard.git.commit"), ("Branch", "shipyard.git.branch"),
              ("Remote", "shipyard.git.remote"), ("Entry point", "shipyard.source.entry_point"),
              ("Seed", "shipyard.seed"), ("Python", "shipyard.env.python"))
    rows: list[tuple[str, Any]] = [(label, tags[key]) for label, key in labels if tags.get(key)]
    dirty = tags.get("shipyard.git.dirty")
    if dirty is not None:
        changes = "no"
        if dirty == "true":
            changes = "yes"
            if _has_artifact(registry, run.info.run_id, _DIFF_ARTIFACT):
                changes += f" (the diff is stored in the run as {_DIFF_ARTIFACT}"
                changes += ", truncated)" if tags.get("shipyard.git.diff_truncated") == "true" else ")"
        rows.insert(1, ("Uncommitted changes", changes))
    if not any(key.startswith("shipyard.git.") for key in tags):
        rows.insert(0, ("Commit", "not recorded (the run was not started inside a git repository)"))
    return "## Code version\n\n" + _table(("Field", "Value"), rows)


def _params(run: Run | None) -> str:
    if run is None:
        return ""
    params = run.data.params
    if not params:
        return "## Parameters\n\nNo parameters were logged."
    return "## Parameters\n\n" + _table(("Name", "Value"), sorted(params.items()))


def _metrics(run: Run | None) -> str:
    if run is None:
        return ""
    latest = run.data.latest_metrics
    if not latest:
        return "## Metrics\n\nNo metrics were logged."
    rows = [(key, _number(m.value), m.step) for key, m in sorted(latest.items())]
    return "## Metrics\n\nThe latest value of each metric of the training run.\n\n" + _table(
        ("Name", "Value", "Step"), rows)


def _evaluation(run_id: str | None, run: Run | None) -> str:
    if run_id is None:
        return ""
    if run is None:
        return f"## Evaluation\n\nThe latest evaluation run ({run_id}) is not in the store."
    params = run.data.params
    about = f"Run {run_id} ({escape_cell(run.info.run_name)}, {_when(run.info.start_time)})"
    if params.get("dataset"):
        about += f" on dataset {escape_cell(params['dataset'])}"
        if params.get("rows"):
            about += f" ({params['rows']} rows)"
    if params.get("dataset_digest"):
        about += f", digest {params['dataset_digest']}"
    rows = [(key, _number(value)) for key, value in sorted(run.data.metrics.items())]
    table = _table(("Metric", "Value"), rows) if rows else "No metrics were logged."
    return f"## Evaluation\n\n{about}.\n\n{table}"


def _signature(manifest: ModelManifest | None) -> str:
    if manifest is None:
        return "## Signature\n\nThe package manifest (MLmodel) could not be read."
    if manifest.signature is None:
        return "## Signature\n\nNo signature was recorded (log the model with an input example to infer one)."
    from shipyard.models.signature import Signature

    try:
        signature = Signature.from_dict(manifest.signature)
    except InvalidInput as exc:
        return f"## Signature\n\nThe recorded signature is not valid: {escape_cell(exc.message)}"
    parts = ["## Signature", "### Inputs", _schema(signature.inputs), "### Outputs",
             _schema(signature.outputs) if signature.outputs is not None else "Not recorded."]
    return "\n\n".join(parts)


def _schema(schema: Schema) -> str:
    if schema.kind == "tensor":
        column = schema.columns[0]
        return _table(("Tensor", "Type", "Shape"),
                      [(column.name or "(unnamed)", column.dtype, str(tuple(column.shape or ())))])
    return _table(("Name", "Type", "Optional"),
                  [(c.name, c.dtype, "yes" if c.optional else "no") for c in schema.columns])


def _requirements(manifest: ModelManifest | None) -> str:
    if manifest is None:
        return ""
    pickle = ("**yes**: loading it runs code from the package; load it only from sources you trust"
              if manifest.pickle_based else "no")
    rows = [("Flavor", manifest.flavor), ("Pickle-based", pickle), ("Python", manifest.python_version)]
    table = _table(("Field", "Value"), rows, escape=(True, False))
    requirements = "\n".join(f"- {escape_cell(r)}" for r in manifest.requirements) or "None recorded."
    return f"## Requirements\n\n{table}\n\n{requirements}"


def _lineage(version: ModelVersion, run: Run | None, evaluation: Run | None) -> str:
    lines = []
    datasets = sorted((k, v) for k, v in (run.data.params.items() if run else ()) if _is_dataset_param(k))
    if datasets:
        lines.append("Dataset params of the training run:\n\n" + _table(("Name", "Value"), datasets))
    steps = []
    if version.run_id:
        name = f" ({escape_cell(run.info.run_name)})" if run is not None else ""
        steps.append(f"- training run {version.run_id}{name} logged {escape_cell(version.source)}")
    steps.append(f"- which became version {version.version} of {escape_cell(version.name)}: "
                 f"models:/{escape_cell(version.name)}/{version.version}")
    if evaluation is not None:
        params = evaluation.data.params
        on = f" on dataset {escape_cell(params['dataset'])}" if params.get("dataset") else ""
        on += f" ({params['dataset_digest']})" if params.get("dataset_digest") else ""
        steps.append(f"- evaluated by run {evaluation.info.run_id}{on}")
    lines.append("\n".join(steps))
    return "## Lineage\n\n" + "\n\n".join(lines)


# -- helpers ---------------------------------------------------------------------------------------

def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], escape: Sequence[bool] | None = None) -> str:
    """A GitHub Markdown table; cells are escaped unless ``escape`` says otherwise per column."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [escape_cell(v) if escape is None or escape[i] else " ".join(str(v).splitlines())
                 for i, v in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _number(value: float) -> str:
    """Six significant digits: ``0.953125``, ``1.23457e+06``, ``nan``."""
    return format(value, ".6g")


def _when(ms: int | None) -> str:
    if not ms:
        return "unknown"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _is_dataset_param(key: str) -> bool:
    """Params naming data: ``dataset``, ``train_data``, ``data.path``, ``dataset_digest``..."""
    lowered = key.lower()
    return "dataset" in lowered or bool(_DATASET_WORDS & set(re.split(r"[_.\-/: ]", lowered)))


def _find_run(registry: RegistryService, run_id: str | None) -> Run | None:
    if not run_id:
        return None
    try:
        return registry.store.runs.get(run_id)
    except (NotFound, InvalidInput):
        return None


def _has_artifact(registry: RegistryService, run_id: str, path: str) -> bool:
    folder, _, _ = path.rpartition("/")
    try:
        return any(entry.path == path for entry in registry.artifacts.list(run_id, folder))
    except NotFound:
        return False


def _manifest(registry: RegistryService, source: str) -> ModelManifest | None:
    """The ``MLmodel`` manifest of the package at ``source``; ``None`` when it cannot be read."""
    try:
        manifest: ModelManifest = registry.get_model_manifest(source)
        return manifest
    except (NotFound, InvalidInput):
        return None
