from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """One entry of a run's artifact listing: a file (with size and SHA-256) or a folder."""

    path: str
    is_dir: bool
    size: int | None = None
    digest: str | None = None
