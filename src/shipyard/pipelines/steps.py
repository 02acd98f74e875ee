"""``@step``: a function made a pipeline step, with its options (cache, retries, gates, outputs, resources).

Kept apart from :mod:`shipyard.pipelines.dsl` (which builds graphs and runs them) so the modules that only
need to recognise a step (cache keys, workers) do not import the runner.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, overload

from shipyard.errors import InvalidInput
from shipyard.pipelines.typecheck import accepts, describe, hints

__all__ = ["SINGLE_OUTPUT", "TRACE", "Step", "Tracer", "parse_resources", "short_repr", "step"]

SINGLE_OUTPUT = "output"


class Tracer(Protocol):
    """What records step calls while a pipeline function runs (the DSL's graph builder)."""

    def add(self, target: Step, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any: ...


# Set while a pipeline function is traced: a step called then records a call instead of running.
TRACE: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar("shipyard_pipeline_trace", default=None)


class Step:
    """A function made a pipeline step by :func:`step`."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, cache: bool = True, retries: int = 0,
                 retry_delay: float = 1.0, gate: str | Sequence[str] | None = None,
                 outputs: Sequence[str] | None = None, pickle: bool = False,
                 resources: Mapping[str, float] | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        if not self.name.isidentifier():
            raise InvalidInput(f"step name {self.name!r} must be a Python identifier (letters, digits, _)")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInput(f"step {self.name!r}: retries must be a whole number >= 0, got {retries!r}")
        if not isinstance(retry_delay, int | float) or retry_delay < 0:
            raise InvalidInput(f"step {self.name!r}: retry_delay must be a number of seconds >= 0, got {retry_delay!r}")
        self.cache = bool(cache)
        self.retries = retries
        self.retry_delay = float(retry_delay)
        self.pickle = bool(pickle)
        self.resources = parse_resources(self.name, resources)
        self.gates = _check_gates(self.name, gate)
        self.outputs = _check_outputs(self.name, outputs)
        self.signature = inspect.signature(fn)
        self.hints = hints(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<Step {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = TRACE.get()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value (defaults applied). Raises ``InvalidInput`` naming the step."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {self.name!r} was called wrongly: {exc}") from None
        bound.apply_defaults()
        for name, param in self.signature.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise InvalidInput(f"step {self.name!r}: *args and **kwargs parameters are not supported; "
                                   f"name each input ({name!r})")
        return dict(bound.arguments)

    def check_argument(self, name: str, value: Any) -> None:
        """``InvalidInput`` when ``value`` does not fit parameter ``name``'s annotation."""
        expected = self.hints.get(name)
        if expected is not None and not accepts(expected, value):
            raise InvalidInput(f"step {self.name!r}, argument {name!r}: expected {describe(expected)}, got "
                               f"{type(value).__module__}.{type(value).__qualname__} ({short_repr(value)})",
                               step=self.name, argument=name)


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_gates(name: str, gate: str | Sequence[str] | None) -> tuple[str, ...]:
    from shipyard.models.gates import parse_requirements

    gates = (gate,) if isinstance(gate, str) else tuple(gate or ())
    for text in gates:
        try:
            parse_requirements([text])
        except InvalidInput as exc:
            raise InvalidInput(f"step {name!r}: gate {text!r} is not valid: {exc}") from None
    return gates


def _check_outputs(name: str, outputs: Sequence[str] | None) -> tuple[str, ...]:
    if outputs is None:
        return (SINGLE_OUTPUT,)
    names = tuple(outputs)
    if isinstance(outputs, str) or not names or len(set(names)) != len(names) or \
            not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise InvalidInput(f"step {name!r}: outputs must be distinct identifiers, e.g. outputs=('train', 'test'); "
                           f"got {outputs!r}")
    return names


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(*, name: str | None = None, cache: bool = True, retries: int = 0, retry_delay: float = 1.0,
         gate: str | Sequence[str] | None = None, outputs: Sequence[str] | None = None, pickle: bool = False,
         resources: Mapping[str, float] | None = None) -> Callable[[Callable[..., Any]], Step]: ...


def step(fn: Callable[..., Any] | None = None, /, **options: Any) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make ``fn`` a pipeline step.

    ``cache`` (default True) reuses the outputs of an earlier run with the same code, parameters and
    inputs; ``retries`` re-runs a failing step, waiting ``retry_delay`` seconds, doubled each time;
    ``gate`` (``"metrics.f1 >= 0.8"``, the search filter grammar) stops the pipeline unless the step's
    metrics pass; ``outputs`` names the items of a returned tuple; ``pickle`` allows pickle for outputs
    no serializer handles (labelled as such); ``resources`` (``{"cpus": 2}``) is for executors that place
    steps.
    """
    if fn is not None:
        return Step(fn, **options)
    return lambda f: Step(f, **options)


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_resources(step_name: str, resources: Mapping[str, Any] | None) -> dict[str, float]:
    """``resources`` checked and normalised: ``cpus``, ``gpus`` (counts, fractions allowed), ``memory`` (bytes,
    or text such as ``"4GiB"``, ``"512MB"``) and any custom resource a Ray cluster declares (a count).
    Raises ``InvalidInput`` naming the step and the resource."""
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise InvalidInput(f"step {step_name!r}: resources must be a dict such as {{'cpus': 2, 'memory': '4GiB'}}, "
                           f"got {type(resources).__qualname__}")
    out: dict[str, float] = {}
    for name, value in resources.items():
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"step {step_name!r}: resource names are strings (cpus, gpus, memory...), got {name!r}")
        if name == "memory" and isinstance(value, str):
            match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
            unit = match.group(2).lower() if match else ""
            if match is None or unit not in _UNITS:
                raise InvalidInput(f"step {step_name!r}: memory {value!r} is not a size; write bytes or e.g. '512MB', "
                                   "'4GiB'")
            value = float(match.group(1)) * _UNITS[unit]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
            raise InvalidInput(f"step {step_name!r}: resource {name!r} must be a number >= 0, got {value!r}")
        out[name] = float(value)
    return out
