"""``@step`` and ``@pipeline``: a DAG built from ordinary Python calls.

Calling a step inside a pipeline function does not run it: it records a :class:`~shipyard.pipelines.graph.Call`
and returns :class:`Output` placeholders that later calls take as arguments. Outside a pipeline a step is
the plain function, so it can be unit tested as one. Arguments are checked against the step's annotations
while the graph is built, so a wrong value fails before anything runs, with the step and argument named.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.pipelines.graph import Call, Graph, Ref
from shipyard.pipelines.steps import TRACE, Step, short_repr, step
from shipyard.pipelines.targets import load_target
from shipyard.pipelines.typecheck import accepts, describe, hints, may_produce

if TYPE_CHECKING:
    from shipyard.pipelines.runner import PipelineRun

__all__ = ["Output", "Pipeline", "Step", "pipeline", "step"]


class Output:
    """What a step call returns while a pipeline is built: a placeholder for a value produced later."""

    __slots__ = ("_builder", "_type", "ref")

    def __init__(self, builder: _Builder, ref: Ref, produced_type: Any) -> None:
        self._builder = builder
        self.ref = ref
        self._type = produced_type

    def __repr__(self) -> str:
        return f"<Output {self.ref.call}.{self.ref.output}>"

    def after(self, *others: Output) -> Output:
        """Run this output's step only after the steps of ``others``, although it takes none of their values."""
        call = self._builder.graph.calls[self.ref.call]
        for other in others:
            if not isinstance(other, Output):
                raise InvalidInput(f"after() takes step outputs, got {type(other).__qualname__}")
            call.after.add(other.ref.call)
        return self

    def __bool__(self) -> bool:
        raise InvalidInput(f"the output of step {self.ref.call!r} is not known while the pipeline is built; "
                           "decide inside a step (a step can take it as an argument)")

    def __iter__(self) -> Any:
        raise InvalidInput(f"the output of step {self.ref.call!r} cannot be unpacked while the pipeline is built; "
                           "give the step outputs=('a', 'b') to return several values")


class _Builder:
    def __init__(self, name: str) -> None:
        self.graph = Graph(name)

    def add(self, target: Step, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        values = target.bind(args, kwargs)
        call_id = target.name
        n = 1
        while call_id in self.graph.calls:
            n += 1
            call_id = f"{target.name}_{n}"
        wired: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, Output):
                produced = self.graph.calls[value.ref.call].step
                expected = target.hints.get(name)
                if expected is not None and not may_produce(value._type, expected):
                    raise InvalidInput(f"step {target.name!r}, argument {name!r}: expected {describe(expected)}, but "
                                       f"step {produced.name!r} returns {describe(value._type)}",
                                       step=target.name, argument=name)
                wired[name] = value.ref
            elif isinstance(value, Step):
                raise InvalidInput(f"step {target.name!r}, argument {name!r}: got the step {value.name!r} itself; "
                                   f"call it ({value.name}(...)) and pass its output")
            else:
                target.check_argument(name, value)
                wired[name] = literal(target.name, name, value)
        self.graph.calls[call_id] = Call(call_id, target, wired)
        produced_type = target.hints.get("return", Any)
        if len(target.outputs) == 1:
            return Output(self, Ref(call_id, target.outputs[0]), produced_type)
        return tuple(Output(self, Ref(call_id, name), Any) for name in target.outputs)


def literal(step_name: str, argument: str, value: Any) -> Any:
    """A value given to a step directly must be JSON (it is part of the cache key and recorded as a param);
    paths are kept as strings."""
    if isinstance(value, PurePath | os.PathLike):
        return os.fspath(value)
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        raise InvalidInput(f"step {step_name!r}, argument {argument!r}: a value given directly to a step must be a "
                           f"JSON value (number, string, list, dict...), got {type(value).__qualname__}; produce it in "
                           "a step and pass that step's output instead", step=step_name, argument=argument) from None
    return value


class Pipeline:
    """A function made a pipeline by :func:`pipeline`: ``run`` it, or look at its ``graph``."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.signature = inspect.signature(fn)
        self.hints = hints(fn)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<Pipeline {self.name}>"

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The pipeline's parameters with defaults applied. Raises ``InvalidInput`` naming what is wrong."""
        unknown = sorted(set(values) - set(self.signature.parameters))
        if unknown:
            raise InvalidInput(f"pipeline {self.name!r} has no parameter {unknown[0]!r}; its parameters: "
                               f"{', '.join(self.signature.parameters) or '(none)'}")
        try:
            bound = self.signature.bind(**values)
        except TypeError as exc:
            raise InvalidInput(f"pipeline {self.name!r}: {exc}") from None
        bound.apply_defaults()
        for key, value in bound.arguments.items():
            expected = self.hints.get(key)
            if expected is not None and not accepts(expected, value):
                raise InvalidInput(f"pipeline {self.name!r}, parameter {key!r}: expected {describe(expected)}, got "
                                   f"{type(value).__qualname__} ({short_repr(value)})")
        return dict(bound.arguments)

    def graph(self, **params: Any) -> Graph:
        """Build the DAG for these parameters (parameters without a default that are not given are traced
        with a placeholder, so the shape can be drawn without real values)."""
        values = dict(params)
        for key, param in self.signature.parameters.items():
            if key not in values and param.default is inspect.Parameter.empty:
                values[key] = f"<{key}>"
        return self.build(values)

    def build(self, params: Mapping[str, Any]) -> Graph:
        builder = _Builder(self.name)
        token = TRACE.set(builder)
        try:
            self.fn(**params)
        finally:
            TRACE.reset(token)
        builder.graph.order()  # a cycle fails here, before anything runs
        if not builder.graph.calls:
            raise InvalidInput(f"pipeline {self.name!r} calls no step; decorate its functions with @step")
        return builder.graph

    def run(self, **kwargs: Any) -> PipelineRun:
        """Run the pipeline; see :func:`shipyard.pipelines.runner.run_pipeline` for the options.
        Parameters are passed as keywords: ``churn.run(path="data.parquet", lr=0.05)``."""
        from shipyard.pipelines.runner import RUN_OPTIONS, run_pipeline

        options = {k: kwargs.pop(k) for k in list(kwargs) if k in RUN_OPTIONS}
        return run_pipeline(self, kwargs, **options)


def pipeline(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Make ``fn`` a pipeline: its body calls steps, wiring outputs to inputs."""
    if fn is not None:
        return Pipeline(fn, name=name)
    return lambda f: Pipeline(f, name=name)


def load_pipeline(target: str) -> Pipeline:
    """The pipeline named ``module:attribute`` (``module`` importable from the working directory, or a
    ``path/to/file.py``). Raises ``InvalidInput`` saying what was not found."""
    found = load_target(target, "pipeline", "myproject.pipelines:churn")
    if not isinstance(found, Pipeline):
        kind = "nothing" if found is None else f"a {type(found).__qualname__}"
        raise InvalidInput(f"{target!r} is {kind}, not a pipeline: decorate the function with @pipeline")
    return found


def parse_params(target: Pipeline, texts: Mapping[str, str]) -> dict[str, Any]:
    """``--param`` values (text) converted by the pipeline's annotations: numbers, booleans, strings, and JSON
    for lists and dicts. Raises ``InvalidInput`` naming the parameter."""
    out: dict[str, Any] = {}
    for key, text in texts.items():
        if key not in target.signature.parameters:
            raise InvalidInput(f"pipeline {target.name!r} has no parameter {key!r}; its parameters: "
                               f"{', '.join(target.signature.parameters) or '(none)'}")
        expected = target.hints.get(key)
        try:
            if expected is str:
                out[key] = text
            elif expected is bool:
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                out[key] = lowered in ("true", "1", "yes")
            elif expected is int:
                out[key] = int(text)
            elif expected is float:
                out[key] = float(text)
            else:
                try:
                    out[key] = json.loads(text)
                except ValueError:
                    out[key] = text  # an unannotated word is a string
        except ValueError:
            raise InvalidInput(f"--param {key}={text}: expected {describe(expected)} for parameter {key!r} of "
                               f"pipeline {target.name!r}") from None
    return out
