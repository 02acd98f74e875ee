"""The model manifest: ``MLmodel``, a YAML file at the root of every model package.

It says how to load the model (flavor and its loader options), what it needs (Python and
package versions), what it takes and returns (signature), and the SHA-256 of every other
file of the package, so loading can refuse a package whose files changed.

An ``MLmodel`` in MLflow's format (a top-level ``flavors`` mapping) is read too: :meth:`ModelManifest.parse`
hands it to :mod:`shipyard.models.mlflow_format`, which converts it into the same object.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shipyard.errors import ArtifactCorrupted, InvalidInput

MANIFEST = "MLmodel"
FORMAT_VERSION = 1


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
        return cls.parse(path.read_text(), str(path), FolderFiles(folder))

    @classmethod
    def parse(cls, text: str, where: str, files: PackageFiles | None = None) -> ModelManifest:
        """The manifest in ``text`` (YAML); ``InvalidInput`` naming ``where`` when it is not one.

        An MLflow-format document is converted; ``files`` (the package's other files) then give
        its requirements and digests, which MLflow keeps outside ``MLmodel`` or not at all."""
        import yaml

        from shipyard.models.mlflow_format import is_mlflow_manifest, manifest_fields

        try:
            # libyaml's safe loader when PyYAML has it: ~4x faster than the pure-Python one, and
            # reading the manifest is the largest part of loading a small model.
            raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{where} is not a valid model manifest: {exc}") from None
        if is_mlflow_manifest(raw):
            return cls(**manifest_fields(raw, where, files))
        try:
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in raw.items() if k in known})
        except (TypeError, AttributeError) as exc:
            raise InvalidInput(f"{where} is not a valid model manifest: {exc}") from None

    def write(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(self.to_yaml())


class PackageFiles(Protocol):
    """The files beside a manifest, wherever the package is (a local folder, a run's artifacts)."""

    def digests(self) -> dict[str, str]:
        """``"sha256:<hex>"`` of every file except the manifest, by path relative to the package."""
        ...

    def read_text(self, name: str) -> str | None:
        """The text of the package file ``name``, or None when it has none."""
        ...


@dataclass(frozen=True)
class FolderFiles:
    """:class:`PackageFiles` of a package folder on the local disk."""

    folder: Path

    def digests(self) -> dict[str, str]:
        return digest_folder(self.folder)

    def read_text(self, name: str) -> str | None:
        path = self.folder / name
        return path.read_text(errors="replace") if path.is_file() else None


def digest_folder(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder`` except the manifest, by relative path."""
    from shipyard.data.digest import digest_file

    return {p.relative_to(folder).as_posix(): digest_file(p)
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
