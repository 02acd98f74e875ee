"""The contract every ArtifactStore implementation must pass.

Written once and subclassed per backend in ``test_artifact_stores.py`` (the local folder, S3 through
moto's server, GCS through its emulator, the REST store through an in-process server); a subclass
provides only the ``backend`` fixture. Tests never assume an empty store: every test logs into runs
of its own, gives content it counts or tampers with bytes no other test logs, and checks "nothing
was written" as "what is stored did not change", so a backend may share one server per module.

The :class:`Backing` of a backend reads and writes what the store keeps *without* the code under
test (the local folder itself, boto3 for S3, gcsfs for GCS, the REST server's own folder), so a
test can tamper with stored bytes, and see temp files a listing would hide.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote

import pytest

from shipyard.artifacts import ArtifactStore
from shipyard.entities import ArtifactEntry
from shipyard.errors import ArtifactCorrupted, InvalidInput, NotFound

# raw path -> words of the rule it breaks; every store refuses them before writing anything
BAD_PATHS = {
    "absolute": ("/etc/passwd", "relative"),
    "absolute-encoded": ("%2Fetc/passwd", "relative"),
    "drive": ("C:\\x", "backslash"),
    "drive-forward": ("C:/x", "drive"),
    "drive-relative": ("c:x", "drive"),
    "unc": ("\\\\server\\share", "backslash"),
    "dotdot": ("../x", r"'\.\.'"),
    "dotdot-inner": ("a/../../x", r"'\.\.'"),
    "dotdot-inside-only": ("a/../b", r"'\.\.'"),
    "dotdot-encoded": ("%2e%2e/x", r"'\.\.'"),
    "dotdot-slash-encoded": ("%2e%2e%2fx", r"'\.\.'"),
    "dotdot-trailing": ("a/..", r"'\.\.'"),
    "backslash": ("a\\b", "backslash"),
    "backslash-encoded": ("a%5cb", "backslash"),
    "nul": ("a\x00b", "control"),
    "nul-encoded": ("a%00b", "control"),
    "newline": ("a\nb", "control"),
    "escape": ("a\x1bb", "control"),
    "del": ("a\x7f", "control"),
    "c1": ("a\x85", "control"),
    "double-encoded": ("%252e%252e/x", "double encoding"),
    "bad-utf8": ("a%ff", "UTF-8"),
}

# Names refused for a *new* file (they read as a traversal or as another file to some other client,
# proxy or OS): raw path (as sent in a URL, and as given to the SDK) -> words of the rule it names.
REFUSED_NAMES = {
    "dots-only": ("a/.../x.txt", "only of dots"),
    "four-dots": ("..../x.txt", "only of dots"),
    "strip-once": ("....//x.txt", "only of dots"),
    "dotdot-semicolon": ("..;/x.txt", "';'"),
    "semicolon": ("a;b/x.txt", "';'"),
    "overlong-utf8": ("a%c0%afb.txt", "UTF-8"),
    "nul": ("a%00b.txt", "control character"),
    "escape-char": ("a%1bb.txt", "control character"),
    "c1-control": ("a%c2%85b.txt", "control character"),
    "bidi-override": ("a%e2%80%aetxt.exe", "bidirectional"),
}

# Names that look odd but are ordinary files: stored, listed and read back by every store.
ORDINARY_NAMES = [".hidden", "a..b.txt", "v1.2/model.onnx", "café/naïve 100%.txt", "..x", "x..", "notes/read me.txt"]

TEMP_PREFIXES = (".shipyard-tmp-", ".shipyard-download-")


class Backing(Protocol):
    """What a store keeps, reached without the store under test; keys are relative to its root."""

    def snapshot(self) -> dict[str, bytes]:
        """Every stored object (temp files included) with its bytes."""
        ...

    def write(self, key: str, data: bytes) -> None: ...

    def remove(self, key: str) -> None: ...


@dataclass
class ArtifactBackend:
    """What a subclass's ``backend`` fixture yields."""

    store: ArtifactStore
    backing: Backing
    # A second store on the same location sharing no client state with the first (another process).
    reopen: Callable[[], ArtifactStore]
    # A run id the store accepts writes for (the REST store's server knows only runs it created).
    make_run: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_key_of(digest: str) -> str:
    """Where the layout (``blobs/sha256/<2 hex>/<64 hex>``) puts the content of ``digest``."""
    hexdigest = digest.removeprefix("sha256:")
    return f"blobs/sha256/{hexdigest[:2]}/{hexdigest}"


def blob_keys(snapshot: dict[str, bytes]) -> set[str]:
    return {key for key in snapshot if key.startswith("blobs/")}


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under a local ``folder`` with its bytes (temp files included)."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def unique(text: str) -> bytes:
    """Content no other test logs, for tests that count or tamper with stored blobs."""
    return f"{text} {uuid.uuid4().hex}".encode()


class ArtifactStoreContract:
    __test__ = False

    # -- fixtures: a subclass overrides ``backend`` only --------------------------------------------

    @pytest.fixture
    def backend(self) -> Iterator[ArtifactBackend]:
        raise NotImplementedError("a backend's test class provides the 'backend' fixture")

    # How many files the concurrency test logs from 8 threads. Against a single-process emulator each
    # write is several HTTP round trips, so those backends race fewer files (still 8 threads at once).
    concurrent_files = 200

    def supports_resumable_uploads(self) -> bool:
        """Whether the backend takes a file in several parts (S3 multipart, GCS resumable: clients
        switch to them at 5 MiB). The GCS emulator answers 501 to a resumable upload."""
        return True

    @pytest.fixture
    def store(self, backend: ArtifactBackend) -> ArtifactStore:
        return backend.store

    @pytest.fixture
    def backing(self, backend: ArtifactBackend) -> Backing:
        return backend.backing

    @pytest.fixture
    def run(self, backend: ArtifactBackend) -> str:
        return backend.make_run()

    @pytest.fixture
    def other_run(self, backend: ArtifactBackend) -> str:
        return backend.make_run()

    # -- path rules ---------------------------------------------------------------------------------

    @pytest.mark.parametrize(("raw", "rule"), BAD_PATHS.values(), ids=BAD_PATHS.keys())
    def test_bad_paths_write_nothing(self, store: ArtifactStore, backing: Backing, run: str, tmp_path: Path,
                                     raw: str, rule: str) -> None:
        store.log_bytes(run, b"keep", "keep.txt")
        source = tmp_path / "source.txt"
        source.write_bytes(b"payload")
        before = backing.snapshot()
        with pytest.raises(InvalidInput, match="invalid artifact path"):
            store.log_bytes(run, b"payload", raw)
        with pytest.raises(InvalidInput):
            store.log_file(run, source, raw)
        with pytest.raises(InvalidInput, match="invalid artifact path"):
            store.open(run, raw)
        assert backing.snapshot() == before
        assert not (tmp_path / "etc").exists()
        assert not (tmp_path / "x").exists()

    @pytest.mark.parametrize(("raw", "rule"), REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
    def test_new_names_that_read_as_other_files_are_refused(self, store: ArtifactStore, backing: Backing, run: str,
                                                            raw: str, rule: str) -> None:
        before = backing.snapshot()
        # As typed (percent-escapes decoded once), and as a name that arrives already decoded.
        for name in {raw, unquote(raw, errors="replace")}:
            with pytest.raises(InvalidInput, match=rule) as caught:
                store.log_bytes(run, b"x", name)
            assert "invalid artifact path" in caught.value.message
        assert store.walk(run) == []
        assert backing.snapshot() == before

    def test_ordinary_names_are_stored(self, store: ArtifactStore, run: str) -> None:
        for name in ORDINARY_NAMES:
            store.log_bytes(run, name.encode(), name)
        assert {e.path for e in store.walk(run)} == set(ORDINARY_NAMES)
        for name in ORDINARY_NAMES:
            with store.open(run, name) as stream:
                assert stream.read() == name.encode()

    @pytest.mark.parametrize("run_id", ["", "a/b", "..", "a b", "x" * 65, "ü"], ids=repr)
    def test_run_id_is_validated(self, store: ArtifactStore, backing: Backing, run_id: str, tmp_path: Path) -> None:
        before = backing.snapshot()
        with pytest.raises(InvalidInput, match="run id"):
            store.log_bytes(run_id, b"x", "a")
        for call in (store.list, store.walk):
            with pytest.raises(InvalidInput, match="run id"):
                call(run_id)
        with pytest.raises(InvalidInput, match="run id"):
            store.download(run_id, "", tmp_path / "out")
        assert backing.snapshot() == before

    # -- round trips --------------------------------------------------------------------------------

    def test_log_bytes_round_trip(self, store: ArtifactStore, run: str) -> None:
        entry = store.log_bytes(run, b"hello", "./notes//hello.txt")
        assert entry == ArtifactEntry("notes/hello.txt", False, 5, sha(b"hello"))
        with store.open(run, "notes/hello.txt") as stream:
            assert stream.read() == b"hello"

    def test_log_file_round_trip_large(self, store: ArtifactStore, run: str, tmp_path: Path) -> None:
        # Several 1 MiB chunks; past 5 MiB, where S3 and GCS clients upload in parts.
        data = os.urandom(((6 if self.supports_resumable_uploads() else 4) << 20) + 17)
        source = tmp_path / "big.bin"
        source.write_bytes(data)
        entry = store.log_file(run, source, "model/big.bin")
        assert (entry.size, entry.digest) == (len(data), sha(data))
        with store.open(run, "model/big.bin") as stream:
            assert stream.read(10) == data[:10]
            assert stream.read() == data[10:]
        out = store.download(run, "model/big.bin", tmp_path / "out")
        assert out == tmp_path / "out" / "big.bin"
        assert out.read_bytes() == data

    def test_empty_file_round_trip(self, store: ArtifactStore, run: str, tmp_path: Path) -> None:
        store.log_bytes(run, b"", "empty")
        with store.open(run, "empty") as stream:
            assert stream.read() == b""
        assert store.download(run, "empty", tmp_path / "out").read_bytes() == b""

    def test_folder_round_trip(self, store: ArtifactStore, run: str, tmp_path: Path) -> None:
        files = {"a.txt": b"a", "sub/b.txt": b"b", "sub/deeper/c.txt": b"c", "other/d.txt": b"d"}
        for path, data in files.items():
            store.log_bytes(run, data, path)

        everything = store.download(run, "", tmp_path / "all")
        assert everything == tmp_path / "all"
        assert tree(everything) == files

        sub = store.download(run, "sub", tmp_path / "part")
        assert sub == tmp_path / "part" / "sub"
        assert tree(sub) == {"b.txt": b"b", "deeper/c.txt": b"c"}
        assert not list(tmp_path.rglob(".shipyard-download-*"))

    def test_relogging_replaces(self, store: ArtifactStore, run: str) -> None:
        store.log_bytes(run, b"first", "x.txt")
        store.log_bytes(run, b"second", "x.txt")
        assert store.open(run, "x.txt").read() == b"second"
        assert [e.path for e in store.walk(run)] == ["x.txt"]

    def test_download_empty_run(self, store: ArtifactStore, run: str, tmp_path: Path) -> None:
        assert store.download(run, "", tmp_path / "out") == tmp_path / "out"
        assert (tmp_path / "out").is_dir()

    def test_download_missing(self, store: ArtifactStore, run: str, other_run: str, tmp_path: Path) -> None:
        store.log_bytes(run, b"x", "a/x")
        with pytest.raises(NotFound, match="nope"):
            store.download(run, "nope", tmp_path / "out")
        with pytest.raises(NotFound):
            store.download(other_run, "a", tmp_path / "out")

    def test_a_second_store_sees_what_the_first_stored(self, backend: ArtifactBackend, run: str) -> None:
        first, second = backend.store, backend.reopen()
        try:
            first.log_bytes(run, b"shared", "x/y.txt")
            assert [e.path for e in second.walk(run)] == ["x/y.txt"]
            with second.open(run, "x/y.txt") as stream:
                assert stream.read() == b"shared"
        finally:
            second.close()

    # -- dedup --------------------------------------------------------------------------------------

    def test_same_content_is_stored_once(self, store: ArtifactStore, backing: Backing, run: str, other_run: str,
                                         tmp_path: Path) -> None:
        content = unique("same bytes") * 1000
        before = blob_keys(backing.snapshot())
        source = tmp_path / "weights.bin"
        source.write_bytes(content)
        first = store.log_file(run, source, "weights.bin")
        second = store.log_file(other_run, source, "copy/weights.bin")
        third = store.log_bytes(other_run, content, "again.bin")
        assert first.digest == second.digest == third.digest == sha(content)
        digests = {e.path: e.digest for e in store.walk(other_run)}
        assert digests["again.bin"] == digests["copy/weights.bin"]
        added = blob_keys(backing.snapshot()) - before
        assert added == {blob_key_of(sha(content))}  # one blob, where the layout says

    # -- list and walk ------------------------------------------------------------------------------

    def test_list_and_walk(self, store: ArtifactStore, run: str) -> None:
        for path in ["z.txt", "a/b/c.txt", "a/b/d.txt", "a/e.txt", "m/n.txt"]:
            store.log_bytes(run, path.encode(), path)

        assert store.list(run) == [
            ArtifactEntry("a", True),
            ArtifactEntry("m", True),
            ArtifactEntry("z.txt", False, 5, sha(b"z.txt")),
        ]
        assert [(e.path, e.is_dir) for e in store.list(run, "a")] == [("a/b", True), ("a/e.txt", False)]
        assert [e.path for e in store.list(run, "./a/b/")] == ["a/b/c.txt", "a/b/d.txt"]

        assert [e.path for e in store.walk(run)] == ["a/b/c.txt", "a/b/d.txt", "a/e.txt", "m/n.txt", "z.txt"]
        assert [e.path for e in store.walk(run, "a")] == ["a/b/c.txt", "a/b/d.txt", "a/e.txt"]
        assert all(not e.is_dir and e.digest and e.size for e in store.walk(run))
        assert [e.path for e in store.walk(run, "a/e.txt")] == ["a/e.txt"]
        assert store.walk(run, "a/e.txt")[0].digest == sha(b"a/e.txt")

    def test_list_missing_folder(self, store: ArtifactStore, run: str) -> None:
        assert store.list(run) == []
        assert store.walk(run) == []
        store.log_bytes(run, b"x", "a/file.txt")
        for missing in ["b", "a/nope", "a/file.txt"]:
            with pytest.raises(NotFound, match=missing):
                store.list(run, missing)
        with pytest.raises(NotFound):
            store.walk(run, "b")

    def test_open_missing(self, store: ArtifactStore, run: str) -> None:
        store.log_bytes(run, b"x", "a/file.txt")
        for missing in ["nope.txt", "a"]:  # "a" is a folder, not a file
            with pytest.raises(NotFound, match=missing):
                store.open(run, missing)

    # -- conflicts ----------------------------------------------------------------------------------

    def test_file_where_folder_is(self, store: ArtifactStore, backing: Backing, run: str) -> None:
        store.log_bytes(run, b"x", "a/b")
        before = backing.snapshot()
        with pytest.raises(InvalidInput, match=r"'a'.*'a/' is already a folder"):
            store.log_bytes(run, b"y", "a")
        assert backing.snapshot() == before

    def test_folder_where_file_is(self, store: ArtifactStore, backing: Backing, run: str, tmp_path: Path) -> None:
        store.log_bytes(run, b"x", "a")
        before = backing.snapshot()
        source = tmp_path / "f"
        source.write_bytes(b"new content")
        with pytest.raises(InvalidInput, match=r"'a/b/c'.*'a' is already a file"):
            store.log_file(run, source, "a/b/c")
        with pytest.raises(InvalidInput, match="already a file"):
            store.log_bytes(run, b"y", "a/b")
        assert backing.snapshot() == before

    def test_same_names_in_other_runs_do_not_conflict(self, store: ArtifactStore, run: str, other_run: str) -> None:
        store.log_bytes(run, b"x", "a")
        store.log_bytes(other_run, b"y", "a/b")
        assert [e.path for e in store.walk(run)] == ["a"]
        assert [e.path for e in store.walk(other_run)] == ["a/b"]

    def test_log_file_needs_a_file(self, store: ArtifactStore, backing: Backing, run: str, tmp_path: Path) -> None:
        before = backing.snapshot()
        with pytest.raises(InvalidInput, match="not an existing file"):
            store.log_file(run, tmp_path / "missing", "a")
        with pytest.raises(InvalidInput, match="not an existing file"):
            store.log_file(run, tmp_path, "a")
        assert backing.snapshot() == before

    # -- integrity: digests are checked on every read -----------------------------------------------

    @pytest.mark.parametrize("replace", [bytes.swapcase, lambda data: data[:-1], lambda data: data + b", world"],
                             ids=["same-size", "shorter", "longer"])
    def test_tampered_blob_is_detected(self, store: ArtifactStore, backing: Backing, run: str, tmp_path: Path,
                                       replace: Callable[[bytes], bytes]) -> None:
        data = unique("hello")
        entry = store.log_bytes(run, data, "dir/greeting.txt")
        backing.write(blob_key_of(entry.digest or ""), replace(data))

        with (
            pytest.raises(ArtifactCorrupted, match=rf"'dir/greeting.txt' of run {run}"),
            store.open(run, "dir/greeting.txt") as stream,
        ):
            stream.read()

        # A reader that stops at the logged size is checked too (a server may refuse at ``open``).
        with pytest.raises(ArtifactCorrupted), store.open(run, "dir/greeting.txt") as stream:
            stream.read(len(data))

        with pytest.raises(ArtifactCorrupted, match=r"dir/greeting\.txt"):
            store.download(run, "dir/greeting.txt", tmp_path / "one")
        with pytest.raises(ArtifactCorrupted, match=r"dir/greeting\.txt"):
            store.download(run, "", tmp_path / "all")
        assert tree(tmp_path / "one") == {}  # not the file, nor a temp file
        assert tree(tmp_path / "all") == {}

    def test_tampered_download_keeps_previous_copy(self, store: ArtifactStore, backing: Backing, run: str,
                                                   tmp_path: Path) -> None:
        data = unique("hello")
        entry = store.log_bytes(run, data, "greeting.txt")
        dest = tmp_path / "dest"
        good = store.download(run, "greeting.txt", dest)
        backing.write(blob_key_of(entry.digest or ""), data.swapcase())
        with pytest.raises(ArtifactCorrupted):
            store.download(run, "greeting.txt", dest)
        assert good.read_bytes() == data
        assert sorted(p.name for p in dest.iterdir()) == ["greeting.txt"]

    def test_missing_blob_is_corruption(self, store: ArtifactStore, backing: Backing, run: str) -> None:
        entry = store.log_bytes(run, unique("hello"), "greeting.txt")
        backing.remove(blob_key_of(entry.digest or ""))
        with pytest.raises(ArtifactCorrupted, match=r"greeting\.txt"):
            store.open(run, "greeting.txt")

    def test_unreadable_pointer_is_corruption(self, store: ArtifactStore, backing: Backing, run: str) -> None:
        store.log_bytes(run, b"hello", "greeting.txt")
        backing.write(f"runs/{run}/files/greeting.txt", b'{"digest": "md5:00", "size": 1}')
        with pytest.raises(ArtifactCorrupted, match=r"greeting\.txt"):
            store.list(run)

    # -- concurrency --------------------------------------------------------------------------------

    def test_concurrent_logging_loses_nothing(self, store: ArtifactStore, backing: Backing, run: str) -> None:
        count = self.concurrent_files
        paths = [f"group{i % 7}/sub{i % 3}/file{i}.txt" for i in range(count)]
        barrier = threading.Barrier(8, timeout=60)
        salt = uuid.uuid4().hex
        before = blob_keys(backing.snapshot())

        def log(index: int) -> None:
            if index < 8:
                barrier.wait()
            # every 10th file shares content, so dedup races are exercised too
            data = f"shared {salt}" if index % 10 == 0 else f"content {index} {salt}"
            store.log_bytes(run, data.encode(), paths[index])

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(log, range(count)))

        walked = store.walk(run)
        assert sorted(e.path for e in walked) == sorted(paths)
        after = backing.snapshot()
        assert len(blob_keys(after) - before) == count - count // 10 + 1
        assert not [key for key in after if any(part.startswith(TEMP_PREFIXES) for part in key.split("/"))]

    # -- delete -------------------------------------------------------------------------------------

    def test_delete_removes_a_file_or_a_whole_folder_and_keeps_shared_content(
            self, store: ArtifactStore, run: str, other_run: str) -> None:
        same = unique("same")
        store.log_bytes(run, same, "a/x.txt")
        store.log_bytes(run, b"other", "a/deep/y.txt")
        store.log_bytes(run, b"kept", "b.txt")
        store.log_bytes(other_run, same, "x.txt")
        store.delete(run, "a/x.txt")
        assert [e.path for e in store.walk(run)] == ["a/deep/y.txt", "b.txt"]
        with pytest.raises(NotFound):
            store.open(run, "a/x.txt")
        store.delete(run, "a")
        assert [e.path for e in store.walk(run)] == ["b.txt"]
        assert store.open(other_run, "x.txt").read() == same  # the shared blob is still there
        with pytest.raises(NotFound):
            store.delete(run, "a")
        with pytest.raises(InvalidInput):
            store.delete(run, "../b.txt")
        assert [e.path for e in store.walk(run)] == ["b.txt"]
