"""A step's outputs as run artifacts: written by serializer under ``outputs/<name>/``, read back by any process
that reaches the same artifact store (another machine included), each with the digest cache keys chain on."""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.hashing import sha256_file
from shipyard.pipelines.serializers import get_serializer, serializer_for
from shipyard.tracking.service import HasTracking, TrackingService, as_tracking

if TYPE_CHECKING:
    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.entities import ArtifactEntry

__all__ = ["OUTPUT_PREFIX", "OutputRecord", "decode_records", "encode_records", "load_output", "save_outputs"]

OUTPUT_PREFIX = "outputs"


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """Where one output is stored (``runs:/<run_id>/<path>``), how (``serializer``) and its content ``digest``."""

    name: str
    run_id: str
    path: str
    serializer: str
    digest: str
    type: str
    pickle: bool = False

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{self.path}"


def encode_records(records: dict[str, OutputRecord]) -> str:
    return json.dumps([asdict(r) for r in records.values()], sort_keys=True, separators=(",", ":"))


def decode_records(text: str) -> dict[str, OutputRecord]:
    return {item["name"]: OutputRecord(**item) for item in json.loads(text)}


def _digest_folder(folder: Path, path: str, entries: list[ArtifactEntry]) -> str:
    """The digest of an output's folder, from the entries the artifact store returned for its files (it hashed
    each file to store it; reading them again would double the hashing): SHA-256 over ``<relative path> 0x00
    <hex digest> 0x0A`` per file, sorted by path component. A store that returned no digest: the file is read."""
    files: list[tuple[PurePosixPath, str]] = []
    for entry in entries:
        name = entry.path.removeprefix(f"{path}/")
        hexdigest = entry.digest.removeprefix("sha256:") if entry.digest else sha256_file(folder / name)[0]
        files.append((PurePosixPath(name), hexdigest))
    digest = hashlib.sha256()
    for relative, hexdigest in sorted(files):
        digest.update(f"{relative.as_posix()}\0{hexdigest}\n".encode())
    return "sha256:" + digest.hexdigest()


def split_outputs(step: str, names: tuple[str, ...], result: Any) -> dict[str, Any]:
    """The step's return value by output name. Raises ``InvalidInput`` when a multi-output step did not
    return one value per name."""
    if len(names) == 1:
        return {names[0]: result}
    if not isinstance(result, tuple | list) or len(result) != len(names):
        got = f"a {type(result).__qualname__} of {len(result)}" if isinstance(result, tuple | list) else \
            f"a {type(result).__qualname__}"
        raise InvalidInput(f"step {step!r} declares outputs {names} but returned {got}; return a tuple with one "
                           "value per output", step=step)
    return dict(zip(names, result, strict=True))


def save_outputs(client: TrackingService | HasTracking, run_id: str, step: str, values: dict[str, Any], *,
                 allow_pickle: bool) -> dict[str, OutputRecord]:
    """Serialise each value and store it as artifacts of ``run_id``. Raises ``InvalidInput`` naming a value
    no serializer handles, before anything is stored."""
    chosen = {name: serializer_for(value, step=step, output=name, allow_pickle=allow_pickle)
              for name, value in values.items()}
    tracking = as_tracking(client)
    records: dict[str, OutputRecord] = {}
    with tempfile.TemporaryDirectory(prefix="shipyard-step-") as tmp:
        for name, value in values.items():
            serializer = chosen[name]
            folder = Path(tmp) / name
            folder.mkdir()
            serializer.dump(value, folder)
            path = f"{OUTPUT_PREFIX}/{name}"
            digest = _digest_folder(folder, path, tracking.log_artifacts(run_id, folder, path))
            kind = type(value)
            records[name] = OutputRecord(name, run_id, path, serializer.name, digest,
                                         f"{kind.__module__}.{kind.__qualname__}", serializer.pickle_based)
    return records


def load_output(artifacts: ArtifactStore, record: OutputRecord) -> Any:
    """The value of a stored output (every file's digest is verified on download)."""
    serializer = get_serializer(record.serializer)
    with tempfile.TemporaryDirectory(prefix="shipyard-step-") as tmp:
        folder = artifacts.download(record.run_id, record.path, Path(tmp))
        return serializer.load(folder)
