"""The model manifest: ``MLmodel``, a YAML file at the root of every model package.

It says how to load the model (flavor and its loader options), what it needs (Python and
package versions), what it takes and returns (signature), and the SHA-256 of every other
file of the package, so loading can refuse a package whose files changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import ArtifactCorrupted, InvalidInput

MANIFEST = "MLmodel"
FORMAT_VERSION = 1
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ModelManifest:
    flavor: str
    flavor_options: dict[str, Any]
    pickle_based: bool
    python_version: str
    requirements: list[str]
    files: dict[str, str]  # relative path -> "sha256:<hex>"
    signature: dict[str, Any] | None = None
    input_example: str | None = None  # relative path of the stored example, if any
    created: int = 0
    run_id: str | None = None
    artifact_path: str | None = None
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_yaml(self) -> str:
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return yaml.dump(dataclasses.asdict(self), Dumper=dumper, sort_keys=False)

    @classmethod
    def read(cls, folder: Path) -> ModelManifest:
        path = folder / MANIFEST
        if not path.is_file():
            raise InvalidInput(f"{folder} is not a Shipyard model: it has no {MANIFEST} file")
        return cls.parse(path.read_text(), str(path))

    @classmethod
    def parse(cls, text: str, where: str) -> ModelManifest:
        """The manifest in ``text`` (YAML); ``InvalidInput`` naming ``where`` when it is not one."""
        import yaml

        try:
            # libyaml's safe loader when PyYAML has it: ~4x faster than the pure-Python one, and
            # reading the manifest is the largest part of loading a small model.
            raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in raw.items() if k in known})
        except (yaml.YAMLError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"{where} is not a valid model manifest: {exc}") from None

    def write(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(self.to_yaml())


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def digest_folder(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder`` except the manifest, by relative path."""
    return {p.relative_to(folder).as_posix(): file_digest(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def verify_folder(folder: Path, manifest: ModelManifest) -> None:
    """Refuse a package whose files differ from the manifest (changed, missing or added)."""
    actual = digest_folder(folder)
    for name, expected in manifest.files.items():
        if name not in actual:
            raise ArtifactCorrupted(f"model file {name!r} listed in {MANIFEST} is missing from {folder}")
        if actual[name] != expected:
            raise ArtifactCorrupted(f"model file {name!r} in {folder} was changed after the model was saved "
                                    f"(expected {expected}, found {actual[name]}); refusing to load it")
    added = sorted(set(actual) - set(manifest.files))
    if added:
        raise ArtifactCorrupted(f"model folder {folder} has files not listed in {MANIFEST}: {', '.join(added)}; "
                                "refusing to load it")
