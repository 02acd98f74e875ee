"""Building many frozen records at once, for a page of runs.

The ``__init__`` a dataclass generates for ``frozen=True`` stores each field through
``object.__setattr__``, the price of the frozen ``__setattr__`` it installs. A page of 1,000 runs
builds about 7,000 records (5,000 of them ``Metric``), and that took longer than the database
took to find the page's rows. :func:`maker` gives a constructor that writes the slots directly:
the same object, a third of the cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["maker"]

T = TypeVar("T")


def maker(cls: type[T]) -> Callable[..., T]:
    """A constructor of ``cls``, a frozen and slotted dataclass without ``__post_init__``, that
    takes every field positionally, in declaration order (no defaults)."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]  # not a dataclass: fields() raises TypeError
    if not (dataclasses.is_dataclass(cls) and "__slots__" in vars(cls)) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass without __post_init__")
    names = [f.name for f in params]
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    scope.update({f"set_{name}": getattr(cls, name).__set__ for name in names})
    body = "".join(f"    set_{name}(record, {name})\n" for name in names)
    # Generated source, as dataclasses itself does: a loop over the fields would cost what the
    # frozen __init__ costs.
    exec(f"def make({', '.join(names)}):\n    record = new(cls)\n{body}    return record\n", scope)
    make: Callable[..., T] = scope["make"]
    make.__qualname__ = make.__name__ = f"make_{cls.__name__}"
    return make
