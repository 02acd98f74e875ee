"""How a step's output is written to files and read back, chosen by the value's type.

Built-ins, tried in this order after the serializers users register: small JSON values, pandas
DataFrames (Parquet), numpy arrays (``.npy``, no pickled objects), models (a model package of the
registry's flavors, the one ``log_model`` writes) and, only for steps that allow it with
``@step(pickle=True)``, pickle. Built-ins are ``(name, "module:attribute")`` entries imported on first
use, so a pipeline that passes no DataFrame never imports pandas.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from shipyard.errors import InvalidInput

__all__ = ["Serializer", "get_serializer", "register_serializer", "serializer_for"]

JSON_LIMIT_BYTES = 1 << 20  # "small values": a bigger result belongs in a DataFrame or an array


@runtime_checkable
class Serializer(Protocol):
    name: str
    pickle_based: bool

    def accepts(self, value: Any) -> bool:
        """Whether this serializer can write ``value`` (checked without importing a framework the value
        does not come from)."""
        ...

    def dump(self, value: Any, folder: Path) -> None:
        """Write ``value`` as files into the empty folder ``folder``."""
        ...

    def load(self, folder: Path) -> Any:
        """Read back what :meth:`dump` wrote into ``folder``."""
        ...


def _from(value: Any, package: str) -> bool:
    return any(c.__module__.partition(".")[0] == package for c in type(value).__mro__)


class JsonSerializer:
    name = "json"
    pickle_based = False

    def accepts(self, value: Any) -> bool:
        if not _plain(value, 0):
            return False
        return len(json.dumps(value, allow_nan=True)) <= JSON_LIMIT_BYTES

    def dump(self, value: Any, folder: Path) -> None:
        (folder / "value.json").write_text(json.dumps(value, allow_nan=True, sort_keys=True), encoding="utf-8")

    def load(self, folder: Path) -> Any:
        return json.loads((folder / "value.json").read_text(encoding="utf-8"))


def _plain(value: Any, depth: int) -> bool:
    if depth > 32:
        return False
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) is list:
        return all(_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


class DataFrameSerializer:
    name = "pandas.parquet"
    pickle_based = False

    def accepts(self, value: Any) -> bool:
        if not _from(value, "pandas"):
            return False
        import pandas as pd

        return isinstance(value, pd.DataFrame)

    def dump(self, value: Any, folder: Path) -> None:
        value.to_parquet(folder / "data.parquet", index=True, use_dictionary=_dictionary_columns(value))

    def load(self, folder: Path) -> Any:
        import pandas as pd

        return pd.read_parquet(folder / "data.parquet")


def _dictionary_columns(frame: Any) -> list[str] | bool:
    """The Parquet columns (index included) worth dictionary encoding: strings, bytes and categoricals,
    whose values repeat by nature (booleans are bit-packed either way). pyarrow's default tries it on every
    column, and on random floats that attempt is most of the write time, for nothing (the dictionary
    overflows and it falls back). Only the encoding changes: the values, dtypes and index read back the same."""
    import pyarrow as pa

    schema = pa.Schema.from_pandas(frame, preserve_index=True)
    wanted = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary,
              pa.types.is_dictionary)
    names = [f.name for f in schema if any(test(f.type) for test in wanted)]
    return names or False


class NumpySerializer:
    name = "numpy.npy"
    pickle_based = False

    def accepts(self, value: Any) -> bool:
        if not _from(value, "numpy"):
            return False
        import numpy as np

        return isinstance(value, np.ndarray) and not value.dtype.hasobject

    def dump(self, value: Any, folder: Path) -> None:
        import numpy as np

        np.save(folder / "array.npy", value, allow_pickle=False)

    def load(self, folder: Path) -> Any:
        import numpy as np

        return np.load(folder / "array.npy", allow_pickle=False)


class ModelSerializer:
    """A model package, as ``log_model`` writes it, so a pipeline's model can be registered as it is."""

    name = "model"
    pickle_based = False  # per model: the package's manifest says whether its flavor pickles

    def accepts(self, value: Any) -> bool:
        from shipyard.models.flavors import flavor_for

        try:
            flavor_for(value)
        except InvalidInput:
            return False
        return True

    def dump(self, value: Any, folder: Path) -> None:
        from shipyard.models.package import save_model

        save_model(value, folder)

    def load(self, folder: Path) -> Any:
        from shipyard.models.package import load_model_folder

        return load_model_folder(folder).unwrap()


class PickleSerializer:
    name = "pickle"
    pickle_based = True

    def accepts(self, value: Any) -> bool:
        return True

    def dump(self, value: Any, folder: Path) -> None:
        import pickle

        with open(folder / "value.pkl", "wb") as out:
            pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, folder: Path) -> Any:
        import pickle

        with open(folder / "value.pkl", "rb") as stream:
            return pickle.load(stream)


BUILTIN_SERIALIZERS: tuple[tuple[str, str], ...] = (
    ("json", "shipyard.pipelines.serializers:JsonSerializer"),
    ("pandas.parquet", "shipyard.pipelines.serializers:DataFrameSerializer"),
    ("numpy.npy", "shipyard.pipelines.serializers:NumpySerializer"),
    ("model", "shipyard.pipelines.serializers:ModelSerializer"),
)
PICKLE = ("pickle", "shipyard.pipelines.serializers:PickleSerializer")
_registered: dict[str, Serializer] = {}


def register_serializer(serializer: Serializer) -> Serializer:
    """Use ``serializer`` for the values it accepts, before the built-ins (the latest registered first).
    Register it where the pipeline's module is imported, so every process that loads the output has it."""
    if not isinstance(serializer, Serializer):
        raise InvalidInput(f"{serializer!r} is not a serializer: it needs name, pickle_based, accepts(value), "
                           "dump(value, folder) and load(folder)")
    if any(serializer.name == name for name, _ in (*BUILTIN_SERIALIZERS, PICKLE)):
        raise InvalidInput(f"serializer name {serializer.name!r} is a built-in's; choose another")
    _registered.pop(serializer.name, None)
    _registered[serializer.name] = serializer
    return serializer


@functools.cache
def _builtin(target: str) -> Serializer:
    module, _, attribute = target.partition(":")
    serializer: Serializer = getattr(importlib.import_module(module), attribute)()
    return serializer


def get_serializer(name: str) -> Serializer:
    """The serializer that wrote an output, by the name recorded with it."""
    if name in _registered:
        return _registered[name]
    target = dict((*BUILTIN_SERIALIZERS, PICKLE)).get(name)
    if target is None:
        raise InvalidInput(f"no serializer named {name!r} is registered in this process: import the module that "
                           "calls shipyard.pipelines.register_serializer for it before loading this output")
    return _builtin(target)


def serializer_for(value: Any, *, step: str, output: str, allow_pickle: bool) -> Serializer:
    """The first serializer that accepts ``value``. Raises ``InvalidInput`` naming the type and the ways out."""
    for serializer in reversed(_registered.values()):
        if serializer.accepts(value):
            return serializer
    for _, target in BUILTIN_SERIALIZERS:
        serializer = _builtin(target)
        if serializer.accepts(value):
            return serializer
    if allow_pickle:
        return _builtin(PICKLE[1])
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    raise InvalidInput(f"step {step!r} output {output!r} is a {kind}, which no serializer handles (built-ins: JSON "
                       "values, pandas DataFrames, numpy arrays, models of the registry's flavors). Register one with "
                       "shipyard.pipelines.register_serializer(...) (see docs/pipelines.md), or allow pickle for this "
                       "step with @step(pickle=True)", step=step, output=output, type=kind)
