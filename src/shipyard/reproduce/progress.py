"""How a reproduction reports its long steps and streams the re-run's output.

The SDK's default, :class:`PlainProgress`, writes plain lines to stderr; the CLI passes a rich
one (spinner per step). :class:`QuietProgress` says nothing (tests, scripts).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Protocol, TextIO

__all__ = ["PlainProgress", "Progress", "QuietProgress"]


class Progress(Protocol):
    def step(self, message: str) -> contextlib.AbstractContextManager[None]:
        """Around a long step (``Checking out 3f2a9c0 into a worktree``)."""
        ...

    def output(self, line: str) -> None:
        """One line the re-run printed (stdout and stderr, merged)."""
        ...

    def warn(self, message: str) -> None:
        """Something the user should know that does not stop the reproduction."""
        ...


class PlainProgress:
    """Steps, warnings and the re-run's output as plain lines on ``stream`` (stderr)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        print(f"shipyard: {message}...", file=self.stream, flush=True)
        yield

    def output(self, line: str) -> None:
        print(f"  | {line}", file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        print(f"shipyard: warning: {message}", file=self.stream, flush=True)


class QuietProgress:
    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        yield

    def output(self, line: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass
