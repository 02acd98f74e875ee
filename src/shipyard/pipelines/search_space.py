"""A tuning search space: each parameter's range or choices, given in Python or in YAML, checked before any
trial runs.

The same mapping serves both: ``{"lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True}}`` in
Python is ``lr: {type: float, low: 1e-4, high: 0.3, log: true}`` in YAML. A plain list is a categorical
choice; in Python, :class:`Float`, :class:`Int` and :class:`Categorical` objects can stand for the mappings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput

__all__ = ["Categorical", "Float", "Int", "SearchSpace", "load_space", "parse_space"]

_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Float:
    """A real number in ``[low, high]``; ``log`` samples its logarithm uniformly (learning rates); ``step``
    makes it discrete."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def suggest(self, trial: Any, name: str) -> float:
        value: float = trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)
        return value


@dataclass(frozen=True)
class Int:
    """A whole number in ``[low, high]`` (both included), every ``step``; ``log`` for wide ranges."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def suggest(self, trial: Any, name: str) -> int:
        value: int = trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)
        return value


@dataclass(frozen=True)
class Categorical:
    """One of ``choices`` (strings, numbers, booleans or None)."""

    choices: tuple[Any, ...]

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))


Dimension = Float | Int | Categorical
SearchSpace = dict[str, Dimension]

_KEYS = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"},
         "categorical": {"type", "choices"}}
_EXAMPLE = ("e.g. lr: {type: float, low: 0.0001, high: 0.3, log: true}, depth: {type: int, low: 2, high: 10}, "
            "kernel: [linear, rbf]")


def _number(name: str, key: str, value: Any, *, whole: bool) -> Any:
    if isinstance(value, str):  # YAML reads 1e-4 (no dot) as text
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float) and
                                                                         not math.isfinite(value)):
        raise InvalidInput(f"search space: {name}.{key} must be a {'whole number' if whole else 'number'}, got "
                           f"{value!r}", parameter=name)
    if whole and not float(value).is_integer():
        raise InvalidInput(f"search space: {name}.{key} must be a whole number for type int, got {value!r}",
                           parameter=name)
    return int(value) if whole else float(value)


def _range(name: str, spec: Mapping[str, Any], *, whole: bool) -> Dimension:
    for key in ("low", "high"):
        if key not in spec:
            raise InvalidInput(f"search space: {name} needs '{key}' ({_EXAMPLE})", parameter=name)
    low = _number(name, "low", spec["low"], whole=whole)
    high = _number(name, "high", spec["high"], whole=whole)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise InvalidInput(f"search space: {name}.log must be true or false, got {log!r}", parameter=name)
    if low >= high:
        raise InvalidInput(f"search space: {name} has low={spec['low']!r} >= high={spec['high']!r}; low must be "
                           "below high (a fixed value is a default argument of the objective, not a search)",
                           parameter=name)
    if log and low <= 0:
        raise InvalidInput(f"search space: {name} is log-scaled, so low must be > 0, got {spec['low']!r}",
                           parameter=name)
    step = spec.get("step")
    if step is not None:
        step = _number(name, "step", step, whole=whole)
        if step <= 0:
            raise InvalidInput(f"search space: {name}.step must be > 0, got {spec['step']!r}", parameter=name)
        if log:
            raise InvalidInput(f"search space: {name} cannot be both log-scaled and stepped; drop one",
                               parameter=name)
    if whole:
        return Int(low, high, log, step if step is not None else 1)
    return Float(low, high, log, step)


def _choices(name: str, values: Any) -> Categorical:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise InvalidInput(f"search space: {name} choices must be a non-empty list, got {values!r}", parameter=name)
    for value in values:
        if not isinstance(value, _SCALARS):
            raise InvalidInput(f"search space: {name} choices must be strings, numbers, booleans or null; "
                               f"{value!r} is a {type(value).__qualname__}", parameter=name)
    if len(set(map(repr, values))) != len(values):
        raise InvalidInput(f"search space: {name} lists a choice twice: {list(values)!r}", parameter=name)
    return Categorical(tuple(values))


def _dimension(name: str, spec: Any) -> Dimension:
    if isinstance(spec, Float | Int | Categorical):
        return _range(name, vars(spec), whole=isinstance(spec, Int)) if not isinstance(spec, Categorical) \
            else _choices(name, spec.choices)
    if isinstance(spec, list | tuple):
        return _choices(name, spec)
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"search space: {name} must be a mapping with a type, or a list of choices; got "
                           f"{spec!r} ({_EXAMPLE})", parameter=name)
    kind = spec.get("type")
    if kind not in _KEYS:
        raise InvalidInput(f"search space: {name} has type {kind!r}; expected float, int or categorical "
                           f"({_EXAMPLE})", parameter=name)
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        raise InvalidInput(f"search space: {name} ({kind}) has unknown key {unknown[0]!r}; its keys are "
                           f"{', '.join(sorted(_KEYS[kind] - {'type'}))}", parameter=name)
    if kind == "categorical":
        if "choices" not in spec:
            raise InvalidInput(f"search space: {name} needs 'choices' ({_EXAMPLE})", parameter=name)
        return _choices(name, spec["choices"])
    return _range(name, spec, whole=kind == "int")


def parse_space(space: Any) -> SearchSpace:
    """The checked search space. Raises ``InvalidInput`` naming the parameter and what is wrong with it."""
    if not isinstance(space, Mapping) or not space:
        raise InvalidInput(f"a search space is a non-empty mapping of parameter name to range or choices ({_EXAMPLE})"
                           f"; got {type(space).__qualname__}")
    out: SearchSpace = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidInput(f"search space: parameter names must be Python identifiers (the objective's "
                               f"argument names), got {name!r}")
        out[name] = _dimension(name, spec)
    return out


def load_space(path: str | Path) -> SearchSpace:
    """The search space in a YAML (or JSON) file. Raises ``InvalidInput`` naming the file and the problem."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read search space {str(file)!r}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"search space {str(file)!r} is not valid YAML: {exc}") from None
    try:
        return parse_space(data)
    except InvalidInput as exc:
        raise InvalidInput(f"{file}: {exc}", **exc.details) from None
