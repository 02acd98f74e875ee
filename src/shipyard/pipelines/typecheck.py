"""Checking step arguments against their annotations, as far as an annotation can be checked cheaply.

Plain classes are checked with ``isinstance``; ``X | Y``, ``Optional[X]`` and generics by their
origin (``list[int]`` checks ``list``); ``Any``, type variables and names that do not resolve are
not checked. Numbers follow Python's numeric tower as type checkers do: an ``int`` is a ``float``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["accepts", "describe", "hints", "may_produce"]

_NO_CHECK = object()


def hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The function's resolved annotations; an annotation that does not resolve is left out (unchecked)."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # a forward reference to a name the module never defines: check the rest
        raw = dict(getattr(fn, "__annotations__", {}))
        return {k: v for k, v in raw.items() if not isinstance(v, str)}


def _options(annotation: Any) -> list[Any] | object:
    """The classes a value may be an instance of, or ``_NO_CHECK``."""
    if annotation is Any or annotation is None or isinstance(annotation, typing.TypeVar):
        return [type(None)] if annotation is None else _NO_CHECK
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            sub = _options(arg)
            if sub is _NO_CHECK:
                return _NO_CHECK
            out.extend(sub)  # type: ignore[arg-type]
        return out
    if origin is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return _NO_CHECK
    target = origin or annotation
    if not isinstance(target, type):
        return _NO_CHECK
    if target is float:
        return [float, int]
    if target is complex:
        return [complex, float, int]
    return [target]


def accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` fits ``annotation`` (True when it cannot be checked)."""
    options = _options(annotation)
    if not isinstance(options, list):  # _NO_CHECK
        return True
    if isinstance(value, bool) and bool not in options and int in options and float not in options:
        return False  # True is not a count
    try:
        return isinstance(value, tuple(options))
    except TypeError:  # a protocol that is not runtime-checkable
        return True


def may_produce(produced: Any, expected: Any) -> bool:
    """Whether a step annotated to return ``produced`` can feed a parameter annotated ``expected``:
    False only when no class of one is a subclass of a class of the other."""
    mine, theirs = _options(produced), _options(expected)
    if not isinstance(mine, list) or not isinstance(theirs, list):  # _NO_CHECK
        return True
    try:
        return any(issubclass(a, b) or issubclass(b, a) for a in mine for b in theirs)
    except TypeError:
        return True


def describe(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__qualname__ if annotation.__module__ == "builtins" else \
            f"{annotation.__module__}.{annotation.__qualname__}"
    return str(annotation).replace("typing.", "")
