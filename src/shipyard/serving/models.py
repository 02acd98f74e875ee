"""The models a serving process holds: each loaded once, named, versioned, checked before predict.

A :class:`ServedModel` wraps a loaded package (:class:`~shipyard.models.package.LoadedModel`, or
anything with ``predict`` and a ``manifest``) under the name and version clients address it by.
:meth:`ServedModel.prepare` turns what a protocol decoded into the model's input, once per
request: the package's own signature check (:func:`~shipyard.models.signature.enforce`) plus the
serving rule that a column the signature does not mark optional may hold no missing values. Doing
this per request, before batching, means one caller's bad input is that caller's 400 and never
fails the batch it would have joined.

A :class:`ModelSet` is what the app routes to: names to versions to models. One model today; a
deployment will put several versions (canary, shadow) of a name in the same set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.serving.batcher import Batcher
from shipyard.serving.tables import Split, TableRows

if TYPE_CHECKING:
    from shipyard.models.registry import HasRegistry, RegistryService
    from shipyard.models.signature import Schema, Signature
    from shipyard.serving.tables import TableLayout

__all__ = ["ModelSet", "ServedModel", "load_served", "resolve_model_uri", "row_count"]

# Flavors whose predict is arithmetic on the CPU: not pyfunc (any code), not torch (may be a GPU).
_COMPUTES_ONLY = frozenset({"sklearn", "xgboost", "lightgbm", "onnx"})


@dataclass(eq=False)
class ServedModel:
    """One model version as served: ``name`` and ``version`` are what URLs, responses and metric
    labels use; ``model`` is the loaded package."""

    name: str
    version: str
    model: Any
    uri: str = ""
    path: Path | None = None  # the package folder on this machine, when loaded from one

    @cached_property
    def signature(self) -> Signature | None:
        raw = getattr(getattr(self.model, "manifest", None), "signature", None)
        if raw is None:
            return None
        from shipyard.models.signature import Signature

        return Signature.from_dict(raw)

    @property
    def input_schema(self) -> Schema | None:
        return None if self.signature is None else self.signature.inputs

    @property
    def flavor(self) -> str:
        return str(getattr(getattr(self.model, "manifest", None), "flavor", "unknown"))

    @property
    def computes_only(self) -> bool:
        """Whether predicting is computation on this machine's CPU (no user code that may wait on
        the network, no device to synchronise with), so a fast one may run on the event loop's
        thread (:meth:`~shipyard.serving.batcher.Batcher._judge_inline` still watches it)."""
        return self.flavor in _COMPUTES_ONLY

    def batcher(self, *, max_batch_size: int, max_wait_ms: float, on_batch: Callable[[int, int, float], None],
                name: str) -> Batcher:
        """A batcher of this model's ``predict`` calls (see :class:`~shipyard.serving.batcher.Batcher`)."""
        return Batcher(self.predict, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, on_batch=on_batch,
                       name=name, inline=self.computes_only)

    @property
    def column_names(self) -> list[str] | None:
        """The input column names of a columns signature, else None."""
        schema = self.input_schema
        if schema is None or schema.kind != "columns":
            return None
        return [str(name) for name in schema.names]

    @cached_property
    def table_layout(self) -> TableLayout | None:
        """The fast path's view of a columns signature (None when it does not cover its types)."""
        from shipyard.serving.tables import TableLayout

        return TableLayout.of(self.input_schema)

    @cached_property
    def _predict(self) -> Any:
        # Serving checked every request against the signature already (prepare): a package that
        # can predict without checking again does so, instead of re-checking each batch.
        return getattr(self.model, "predict_conformed", None) or self.model.predict

    def prepare(self, data: Any) -> Any:
        """``data`` (records, a dict of columns, nested lists, a :class:`~shipyard.serving.tables.Split`,
        a DataFrame or an array) as the model takes it: a DataFrame, a numpy array, or (for a table
        the fast path covers) a :class:`~shipyard.serving.tables.TableRows` block that the batcher
        turns into one DataFrame per batch; at least one row. :class:`InvalidInput` names the
        column, type or shape that is wrong."""
        if isinstance(data, list | Mapping) and not data:
            raise InvalidInput("the input has no rows: send at least one")
        if isinstance(data, TableRows):  # an Open Inference Protocol tensor the decoder checked already
            return data
        layout = self.table_layout
        if layout is not None:
            block = layout.rows_of(data)
            if block is not None:
                return block
        if isinstance(data, Split):
            data = data.frame()
        schema = self.input_schema
        if schema is None:
            prepared = _unsigned_input(data)
        else:
            from shipyard.models.signature import enforce

            prepared = enforce(schema, data)
            if schema.kind == "columns":
                _refuse_missing_values(schema, prepared)
        rows = row_count(prepared)
        if rows == 0:
            raise InvalidInput("the input has no rows: send at least one")
        return prepared

    def predict(self, data: Any) -> Any:
        """The model's prediction on prepared (possibly batched) input; runs in a worker thread."""
        if isinstance(data, TableRows):  # one request's block, not joined by a batcher
            data = TableRows.join([data])
        return self._predict(data)


def settle_heap() -> None:
    """Move what is loaded now (models, libraries) out of the garbage collector's way: a full
    collection over a loaded model's ~300,000 objects takes >100 ms and lands in some request's
    latency (it was the whole p99 under load). Unfreezing first lets a swap's released models
    be collected before the new set is frozen."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()


def row_count(data: Any) -> int:
    shape = getattr(data, "shape", None)
    if shape is None:
        return len(data)
    if len(shape) == 0:
        raise InvalidInput("the input is a single scalar: send a batch (a list of rows)")
    return int(shape[0])


def _unsigned_input(data: Any) -> Any:
    """Input for a model saved without a signature: tables as DataFrames, nested lists as arrays."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame | np.ndarray):
        return data
    if isinstance(data, Mapping):
        if data and all(np.ndim(v) == 0 for v in data.values()):
            data = [data]  # one record given as {"col": value, ...}
        else:
            try:
                return pd.DataFrame(dict(data))
            except ValueError as exc:
                raise InvalidInput(f"the columns do not form a table: {exc}") from None
    if isinstance(data, list):
        if not data:
            raise InvalidInput("the input has no rows: send at least one")
        if isinstance(data[0], Mapping):
            if not all(isinstance(record, Mapping) for record in data):
                raise InvalidInput("records must all be objects ({\"column\": value, ...})")
            return pd.DataFrame.from_records(data)
        try:
            array = np.asarray(data)
        except ValueError as exc:
            raise InvalidInput(f"the nested lists do not form an array: {exc}") from None
        if array.dtype.kind == "O" and array.ndim > 1:
            raise InvalidInput(f"the nested lists do not form a numeric array (got an array of shape "
                               f"{array.shape} of mixed values)")
        return array
    raise InvalidInput(f"cannot use a {type(data).__name__} as model input: send rows (a list of objects or "
                       "of lists) or columns (an object of lists)")


def _refuse_missing_values(schema: Schema, frame: Any) -> None:
    """A signature marks a column optional when its example had missing values; a column it does
    not mark so may not have any (most models fail on NaN, and that is the client's input, not a
    server fault). Checked column-wise, not row by row."""
    required = {c.name for c in schema.columns if not c.optional}
    # One isna over the whole frame, then numpy: selecting the required columns first costs ten
    # times more on the small frames of online requests.
    flags = frame.isna().to_numpy().any(axis=0)
    bad = [str(name) for name, flag in zip(frame.columns, flags, strict=True) if flag and name in required]
    if bad:
        listed = ", ".join(repr(name) for name in bad)
        raise InvalidInput(f"missing values (null or NaN) in column{'s' if len(bad) > 1 else ''} {listed}: the "
                           "model's signature does not mark it optional, so every row needs a value",
                           columns=bad)


class ModelSet:
    """The served models by name and version. The first version given for a name is its default
    (what ``/v1/models/{name}/predict`` and ``/v2/models/{name}/infer`` use)."""

    def __init__(self, models: Iterable[ServedModel]) -> None:
        self._by_name: dict[str, dict[str, ServedModel]] = {}
        for served in models:
            versions = self._by_name.setdefault(served.name, {})
            if served.version in versions:
                raise InvalidInput(f"model {served.name!r} version {served.version!r} is given twice")
            versions[served.version] = served
        if not self._by_name:
            raise InvalidInput("nothing to serve: give at least one model")

    def __iter__(self) -> Iterator[ServedModel]:
        for versions in self._by_name.values():
            yield from versions.values()

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_name.values())

    @property
    def default(self) -> ServedModel:
        """The model ``/invocations`` answers with (MLflow's scoring protocol names no model)."""
        return next(iter(self))

    def versions(self, name: str) -> list[str]:
        return list(self._get_versions(name))

    def get(self, name: str, version: str | None = None) -> ServedModel:
        """The model ``name`` at ``version`` (its default when None); :class:`NotFound` listing what
        is served."""
        versions = self._get_versions(name)
        if version is None:
            return next(iter(versions.values()))
        found = versions.get(version)
        if found is None:
            raise NotFound(f"model {name!r} has no version {version!r} here; served: {self.describe()}",
                           served=self.listing())
        return found

    def _get_versions(self, name: str) -> dict[str, ServedModel]:
        versions = self._by_name.get(name)
        if versions is None:
            raise NotFound(f"no model named {name!r} is served here; served: {self.describe()}",
                           served=self.listing())
        return versions

    def listing(self) -> list[dict[str, str]]:
        return [{"name": m.name, "version": m.version} for m in self]

    def describe(self) -> str:
        return ", ".join(f"{m.name} (version {m.version})" for m in self)


def resolve_model_uri(registry: RegistryService, model_uri: str) -> tuple[str, str, str]:
    """``(name, version, pinned URI)`` of the model ``model_uri`` names.

    A ``models:/`` URI is pinned to the version it resolves to now (an alias moving later does not
    change what this process serves); a ``runs:/`` URI is served as its artifact folder's name at
    the run id; a local folder as the folder's name at the run it was logged in (or ``1``).
    """
    from shipyard.models.uri import SUPPORTED, is_local, local_path

    if model_uri.startswith("models:/"):
        version = registry.resolve_model_version(model_uri)
        return version.name, str(version.version), f"models:/{version.name}/{version.version}"
    if model_uri.startswith("runs:/"):
        run_id, path = registry.model_source(model_uri)
        return path.rstrip("/").rpartition("/")[2] or "model", run_id, model_uri
    if is_local(model_uri):
        from shipyard.models.manifest import ModelManifest

        folder = local_path(model_uri).resolve()
        if not folder.is_dir():
            raise NotFound(f"no model folder at {str(folder)!r}")
        manifest = ModelManifest.read(folder)
        return folder.name, manifest.run_id or "1", str(folder)
    raise InvalidInput(f"cannot serve model {model_uri!r}: expected {SUPPORTED}")


def load_served(source: RegistryService | HasRegistry, model_uri: str, *, name: str | None = None,
                dst_path: str | Path | None = None) -> ServedModel:
    """Resolve ``model_uri`` through ``source`` (a registry service, or a ``Client``), fetch the
    package (into ``dst_path`` when given) and load it with its digests verified; served under
    ``name`` when given, else the registered or folder name."""
    from shipyard.models.package import load_model_folder
    from shipyard.models.registry import as_registry

    registry = as_registry(source)
    resolved_name, version, pinned = resolve_model_uri(registry, model_uri)
    folder = registry.download_model(pinned, dst_path) if pinned.startswith(("models:/", "runs:/")) else Path(pinned)
    return ServedModel(name or resolved_name, version, load_model_folder(folder), uri=pinned, path=folder)
