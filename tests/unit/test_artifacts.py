"""Artifact storage: path rules, LocalStorage, and the content-addressed store above it."""

from __future__ import annotations

import ast
import hashlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import shipyard.artifacts as artifacts
from shipyard.artifacts import (
    CasArtifactStore,
    LocalStorage,
    normalize_artifact_path,
    open_artifact_store,
)
from shipyard.entities import ArtifactEntry
from shipyard.errors import ArtifactCorrupted, InvalidInput, NotFound

RUN = "0123456789abcdef0123456789abcdef"
OTHER_RUN = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> CasArtifactStore:
    return CasArtifactStore(LocalStorage(root))


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: a snapshot to compare before and after."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def blob_files(root: Path) -> list[Path]:
    return [p for p in (root / "blobs").rglob("*") if p.is_file()]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- normalize_artifact_path ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a", "a"),
        ("./a//b/", "a/b"),
        ("a/./b", "a/b"),
        ("model/weights.bin", "model/weights.bin"),
        ("a%20b", "a b"),
        ("100%.txt", "100%.txt"),
        ("...", "..."),
        ("a..b/c..", "a..b/c.."),
        ("naïve/日本.txt", "naïve/日本.txt"),
    ],
    ids=[
        "plain",
        "dots-and-slashes",
        "inner-dot",
        "nested",
        "decoded",
        "lone-percent",
        "three-dots",
        "dots-inside-names",
        "unicode",
    ],
)
def test_normalize_canonicalises(raw: str, expected: str) -> None:
    assert normalize_artifact_path(raw) == expected
    assert normalize_artifact_path(expected) == expected  # results are fixed points


@pytest.mark.parametrize(
    "raw", ["", ".", "./", ".//.", "./."], ids=["empty", "dot", "dot-slash", "slashes", "dots"]
)
def test_normalize_empty_only_with_allow_root(raw: str) -> None:
    assert normalize_artifact_path(raw, allow_root=True) == ""
    with pytest.raises(InvalidInput, match="empty"):
        normalize_artifact_path(raw)


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


@pytest.mark.parametrize(("raw", "rule"), BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_normalize_rejects(raw: str, rule: str) -> None:
    with pytest.raises(InvalidInput, match=rule) as info:
        normalize_artifact_path(raw, allow_root=True)
    assert repr(raw) in str(info.value)  # names the path


@pytest.mark.parametrize(("raw", "rule"), BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_bad_paths_write_nothing(
    store: CasArtifactStore, root: Path, tmp_path: Path, raw: str, rule: str
) -> None:
    store.log_bytes(RUN, b"keep", "keep.txt")
    source = tmp_path / "source.txt"
    source.write_bytes(b"payload")
    before = tree(root)
    with pytest.raises(InvalidInput):
        store.log_bytes(RUN, b"payload", raw)
    with pytest.raises(InvalidInput):
        store.log_file(RUN, source, raw)
    assert tree(root) == before
    assert not (tmp_path / "etc").exists()
    assert not (tmp_path / "x").exists()


def test_normalize_rejects_non_strings() -> None:
    with pytest.raises(InvalidInput):
        normalize_artifact_path(b"a")  # type: ignore[arg-type]


# -- round trips ---------------------------------------------------------------------------------


def test_log_bytes_round_trip(store: CasArtifactStore) -> None:
    entry = store.log_bytes(RUN, b"hello", "./notes//hello.txt")
    assert entry == ArtifactEntry("notes/hello.txt", False, 5, sha(b"hello"))
    with store.open(RUN, "notes/hello.txt") as stream:
        assert stream.read() == b"hello"


def test_log_file_round_trip_large(store: CasArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # spans several 1 MiB chunks
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    entry = store.log_file(RUN, source, "model/big.bin")
    assert (entry.size, entry.digest) == (len(data), sha(data))
    with store.open(RUN, "model/big.bin") as stream:
        assert stream.read(10) == data[:10]
        assert stream.read() == data[10:]
    out = store.download(RUN, "model/big.bin", tmp_path / "out")
    assert out == tmp_path / "out" / "big.bin"
    assert out.read_bytes() == data


def test_empty_file_round_trip(store: CasArtifactStore, tmp_path: Path) -> None:
    store.log_bytes(RUN, b"", "empty")
    with store.open(RUN, "empty") as stream:
        assert stream.read() == b""
    assert store.download(RUN, "empty", tmp_path / "out").read_bytes() == b""


def test_folder_round_trip(store: CasArtifactStore, tmp_path: Path) -> None:
    files = {"a.txt": b"a", "sub/b.txt": b"b", "sub/deeper/c.txt": b"c", "other/d.txt": b"d"}
    for path, data in files.items():
        store.log_bytes(RUN, data, path)

    everything = store.download(RUN, "", tmp_path / "all")
    assert everything == tmp_path / "all"
    assert tree(everything) == files

    sub = store.download(RUN, "sub", tmp_path / "part")
    assert sub == tmp_path / "part" / "sub"
    assert tree(sub) == {"b.txt": b"b", "deeper/c.txt": b"c"}
    assert not list(tmp_path.rglob(".shipyard-download-*"))


def test_relogging_replaces(store: CasArtifactStore) -> None:
    store.log_bytes(RUN, b"first", "x.txt")
    store.log_bytes(RUN, b"second", "x.txt")
    assert store.open(RUN, "x.txt").read() == b"second"
    assert [e.path for e in store.walk(RUN)] == ["x.txt"]


def test_download_empty_run(store: CasArtifactStore, tmp_path: Path) -> None:
    assert store.download(RUN, "", tmp_path / "out") == tmp_path / "out"
    assert (tmp_path / "out").is_dir()


def test_download_missing(store: CasArtifactStore, tmp_path: Path) -> None:
    store.log_bytes(RUN, b"x", "a/x")
    with pytest.raises(NotFound, match="nope"):
        store.download(RUN, "nope", tmp_path / "out")
    with pytest.raises(NotFound):
        store.download(OTHER_RUN, "a", tmp_path / "out")


# -- dedup ---------------------------------------------------------------------------------------


def test_same_content_is_stored_once(store: CasArtifactStore, root: Path, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"same bytes" * 1000)
    first = store.log_file(RUN, source, "weights.bin")
    second = store.log_file(OTHER_RUN, source, "copy/weights.bin")
    third = store.log_bytes(OTHER_RUN, b"same bytes" * 1000, "again.bin")
    assert first.digest == second.digest == third.digest
    blobs = blob_files(root)
    assert len(blobs) == 1
    hexdigest = first.digest.removeprefix("sha256:")  # type: ignore[union-attr]
    assert blobs[0] == root / "blobs" / "sha256" / hexdigest[:2] / hexdigest


def test_existing_blob_is_not_rewritten(store: CasArtifactStore, root: Path) -> None:
    store.log_bytes(RUN, b"content", "a")
    (blob,) = blob_files(root)
    before = blob.stat()
    aged = before.st_mtime_ns - 10**9
    os.utime(blob, ns=(aged, aged))
    store.log_bytes(OTHER_RUN, b"content", "b")
    after = blob.stat()
    assert after.st_ino == before.st_ino  # not rewritten (a write goes through a temp file and a rename) ...
    assert after.st_mtime_ns > aged  # ... but touched, so that a concurrent gc sweep sees it in use


# -- list and walk -------------------------------------------------------------------------------


def test_list_and_walk(store: CasArtifactStore) -> None:
    for path in ["z.txt", "a/b/c.txt", "a/b/d.txt", "a/e.txt", "m/n.txt"]:
        store.log_bytes(RUN, path.encode(), path)

    assert store.list(RUN) == [
        ArtifactEntry("a", True),
        ArtifactEntry("m", True),
        ArtifactEntry("z.txt", False, 5, sha(b"z.txt")),
    ]
    assert [(e.path, e.is_dir) for e in store.list(RUN, "a")] == [("a/b", True), ("a/e.txt", False)]
    assert [e.path for e in store.list(RUN, "./a/b/")] == ["a/b/c.txt", "a/b/d.txt"]

    assert [e.path for e in store.walk(RUN)] == ["a/b/c.txt", "a/b/d.txt", "a/e.txt", "m/n.txt", "z.txt"]
    assert [e.path for e in store.walk(RUN, "a")] == ["a/b/c.txt", "a/b/d.txt", "a/e.txt"]
    assert all(not e.is_dir and e.digest and e.size for e in store.walk(RUN))
    assert [e.path for e in store.walk(RUN, "a/e.txt")] == ["a/e.txt"]


def test_list_missing_folder(store: CasArtifactStore) -> None:
    assert store.list(RUN) == []
    assert store.walk(RUN) == []
    store.log_bytes(RUN, b"x", "a/file.txt")
    for missing in ["b", "a/nope", "a/file.txt"]:
        with pytest.raises(NotFound, match=missing):
            store.list(RUN, missing)
    with pytest.raises(NotFound):
        store.walk(RUN, "b")


def test_open_missing(store: CasArtifactStore) -> None:
    store.log_bytes(RUN, b"x", "a/file.txt")
    for missing in ["nope.txt", "a"]:
        with pytest.raises(NotFound, match=missing):
            store.open(RUN, missing)


def test_listing_ignores_temp_files(store: CasArtifactStore, root: Path) -> None:
    store.log_bytes(RUN, b"x", "a/file.txt")
    (root / "runs" / RUN / "files" / "a" / (".shipyard-tmp-" + "0" * 32)).write_bytes(b"half")
    assert [e.path for e in store.list(RUN, "a")] == ["a/file.txt"]


@pytest.mark.parametrize("run_id", ["", "a/b", "..", "a b", "x" * 65, "ü"], ids=repr)
def test_run_id_is_validated(store: CasArtifactStore, root: Path, run_id: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="run id"):
        store.log_bytes(run_id, b"x", "a")
    for call in (store.list, store.walk):
        with pytest.raises(InvalidInput, match="run id"):
            call(run_id)
    with pytest.raises(InvalidInput, match="run id"):
        store.download(run_id, "", tmp_path / "out")
    assert tree(root) == {}


# -- conflicts -----------------------------------------------------------------------------------


def test_file_where_folder_is(store: CasArtifactStore, root: Path) -> None:
    store.log_bytes(RUN, b"x", "a/b")
    before = tree(root)
    with pytest.raises(InvalidInput, match=r"'a'.*'a/' is already a folder"):
        store.log_bytes(RUN, b"y", "a")
    assert tree(root) == before


def test_folder_where_file_is(store: CasArtifactStore, root: Path, tmp_path: Path) -> None:
    store.log_bytes(RUN, b"x", "a")
    before = tree(root)
    source = tmp_path / "f"
    source.write_bytes(b"new content")
    with pytest.raises(InvalidInput, match=r"'a/b/c'.*'a' is already a file"):
        store.log_file(RUN, source, "a/b/c")
    assert tree(root) == before


def test_same_names_in_other_runs_do_not_conflict(store: CasArtifactStore) -> None:
    store.log_bytes(RUN, b"x", "a")
    store.log_bytes(OTHER_RUN, b"y", "a/b")


def test_log_file_needs_a_file(store: CasArtifactStore, root: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not an existing file"):
        store.log_file(RUN, tmp_path / "missing", "a")
    with pytest.raises(InvalidInput, match="not an existing file"):
        store.log_file(RUN, tmp_path, "a")
    assert tree(root) == {}


# -- tampering -----------------------------------------------------------------------------------


def tamper(root: Path, data: bytes) -> None:
    for blob in blob_files(root):
        blob.write_bytes(data)


@pytest.mark.parametrize(
    "replacement", [b"HELLO", b"hell", b"hello, world"], ids=["same-size", "shorter", "longer"]
)
def test_tampered_blob_is_detected(
    store: CasArtifactStore, root: Path, tmp_path: Path, replacement: bytes
) -> None:
    store.log_bytes(RUN, b"hello", "dir/greeting.txt")
    tamper(root, replacement)

    with (
        pytest.raises(ArtifactCorrupted, match=rf"'dir/greeting.txt' of run {RUN}"),
        store.open(RUN, "dir/greeting.txt") as stream,
    ):
        stream.read()

    with store.open(RUN, "dir/greeting.txt") as stream, pytest.raises(ArtifactCorrupted):
        stream.read(5)  # a reader that stops at the logged size is checked too

    with pytest.raises(ArtifactCorrupted, match=r"dir/greeting\.txt"):
        store.download(RUN, "dir/greeting.txt", tmp_path / "one")
    with pytest.raises(ArtifactCorrupted, match=r"dir/greeting\.txt"):
        store.download(RUN, "", tmp_path / "all")
    assert tree(tmp_path / "one") == {}
    assert tree(tmp_path / "all") == {}


def test_tampered_download_keeps_previous_copy(store: CasArtifactStore, root: Path, tmp_path: Path) -> None:
    store.log_bytes(RUN, b"hello", "greeting.txt")
    good = store.download(RUN, "greeting.txt", tmp_path)
    tamper(root, b"HELLO")
    with pytest.raises(ArtifactCorrupted):
        store.download(RUN, "greeting.txt", tmp_path)
    assert good.read_bytes() == b"hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["greeting.txt", "store"]


def test_missing_blob_is_corruption(store: CasArtifactStore, root: Path) -> None:
    store.log_bytes(RUN, b"hello", "greeting.txt")
    for blob in blob_files(root):
        blob.unlink()
    with pytest.raises(ArtifactCorrupted, match=r"greeting\.txt"):
        store.open(RUN, "greeting.txt")


def test_unreadable_pointer_is_corruption(store: CasArtifactStore, root: Path) -> None:
    store.log_bytes(RUN, b"hello", "greeting.txt")
    (root / "runs" / RUN / "files" / "greeting.txt").write_text('{"digest": "md5:00", "size": 1}')
    with pytest.raises(ArtifactCorrupted, match=r"greeting\.txt"):
        store.list(RUN)


# -- LocalStorage --------------------------------------------------------------------------------


def test_no_temp_files_after_writes(store: CasArtifactStore, root: Path, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"data" * 1000)
    store.log_file(RUN, source, "a/f")
    store.log_bytes(RUN, b"bytes", "a/b")
    store.log_bytes(RUN, b"bytes", "a/b")
    names = [p.name for p in root.rglob("*")]
    assert not [n for n in names if "tmp" in n]
    assert len(tree(root)) == 4  # two blobs, two pointers


def test_failed_write_leaves_nothing(root: Path) -> None:
    storage = LocalStorage(root)

    class Boom(Exception):
        pass

    def explode(out: object) -> None:
        raise Boom

    with pytest.raises(Boom):
        storage._write_atomic("a/b", explode)
    assert tree(root) == {}
    assert not storage.exists("a/b")


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "a/../../escape",
        "/etc/passwd",
        str(Path("/tmp/abs")),
        "",
        ".",
        "a/..",
        "nul\x00",
        ".shipyard-tmp-" + "a" * 32,
    ],
    ids=repr,
)
def test_local_storage_containment(root: Path, tmp_path: Path, key: str) -> None:
    storage = LocalStorage(root)
    ops: list[Callable[[], object]] = [
        lambda: storage.put_bytes(key, b"x"),
        lambda: storage.put_file(key, Path(__file__)),
        lambda: storage.open(key),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
    ]
    for op in ops:
        with pytest.raises(InvalidInput, match="storage key"):
            op()
    assert not (tmp_path / "escape").exists()
    assert tree(root) == {}


def test_local_storage_symlink_escape(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    storage = LocalStorage(root)
    with pytest.raises(InvalidInput, match="outside"):
        storage.put_bytes("link/x", b"x")
    with pytest.raises(InvalidInput, match="outside"):
        list(storage.list("link"))
    assert list(outside.iterdir()) == []


def test_local_storage_basics(root: Path, tmp_path: Path) -> None:
    storage = LocalStorage(root)
    assert list(storage.list("")) == []
    assert list(storage.list("nothing/here")) == []
    storage.put_bytes("a/b/c", b"1")
    storage.put_bytes("a/d", b"2")
    assert list(storage.list("")) == [("a", True)]
    assert list(storage.list("a")) == [("b", True), ("d", False)]
    assert storage.exists("a/d")
    assert not storage.exists("a")  # a folder is not an object
    assert not storage.exists("zz")
    with storage.open("a/b/c") as stream:
        assert stream.read() == b"1"
    with pytest.raises(NotFound, match="'a/zz'"):
        storage.open("a/zz")
    with pytest.raises(NotFound, match="'a'"):
        storage.open("a")
    with pytest.raises(InvalidInput, match="cannot read"):
        storage.put_file("x", tmp_path / "missing")
    with pytest.raises(InvalidInput, match="conflicts"):
        storage.put_bytes("a/d/e", b"under a file")
    storage.delete("a/b/c")
    storage.delete("a/b/c")  # absent: no error
    assert list(storage.list("a")) == [("d", False)]  # emptied folder pruned


# -- concurrency ---------------------------------------------------------------------------------


def test_concurrent_logging_loses_nothing(store: CasArtifactStore, root: Path) -> None:
    paths = [f"group{i % 7}/sub{i % 3}/file{i}.txt" for i in range(200)]
    barrier = threading.Barrier(8, timeout=60)

    def log(index: int) -> None:
        if index < 8:
            barrier.wait()
        # every 10th file shares content, so dedup races are exercised too
        data = b"shared" if index % 10 == 0 else f"content {index}".encode()
        store.log_bytes(RUN, data, paths[index])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(log, range(200)))

    walked = store.walk(RUN)
    assert sorted(e.path for e in walked) == sorted(paths)
    assert len(blob_files(root)) == 200 - 20 + 1
    assert not list(root.rglob(".shipyard-tmp-*"))


# -- open_artifact_store -------------------------------------------------------------------------


def test_open_local_path_and_file_uri(tmp_path: Path) -> None:
    by_path = open_artifact_store(str(tmp_path / "plain" / "nested"))
    assert (tmp_path / "plain" / "nested").is_dir()
    by_path.log_bytes(RUN, b"x", "a")

    by_uri = open_artifact_store((tmp_path / "plain" / "nested").as_uri())
    assert by_uri.open(RUN, "a").read() == b"x"

    spaced = open_artifact_store((tmp_path / "with space").as_uri())
    assert isinstance(spaced, CasArtifactStore)
    assert (tmp_path / "with space").is_dir()


@pytest.mark.parametrize("uri", ["ftp://x", "hdfs://namenode/x"])
def test_unknown_scheme(uri: str) -> None:
    with pytest.raises(InvalidInput, match=r"supported are file://"):
        open_artifact_store(uri)


@pytest.mark.parametrize("uri", ["", "   ", "file://otherhost/x", "file:relative"])
def test_bad_store_uris(uri: str) -> None:
    with pytest.raises(InvalidInput):
        open_artifact_store(uri)


def test_public_surface() -> None:
    assert sorted(artifacts.__all__) == [
        "ArtifactStore",
        "BlobStorage",
        "CasArtifactStore",
        "LocalStorage",
        "normalize_artifact_path",
        "open_artifact_store",
    ]
    assert all(hasattr(artifacts, name) for name in artifacts.__all__)


def test_imports_are_light() -> None:
    """These modules import only the standard library and Shipyard itself (backends with heavy
    dependencies live in their own modules, imported by the registry on first use)."""
    package = Path(artifacts.__file__).parent
    for module in (package / f"{name}.py" for name in ("__init__", "cas", "local", "paths", "protocol")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for name in names:
                top = name.split(".")[0]
                allowed = top in ("shipyard", "_typeshed") or top in sys.stdlib_module_names
                assert allowed, f"{module.name} imports {name}"
                assert name not in ("urllib.request", "http.client"), f"{module.name} imports {name}"


def test_file_changed_while_logging(root: Path, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"original")

    class ChangingStorage(LocalStorage):
        def put_file(self, key: str, src: Path) -> None:
            src.write_bytes(b"changed!")  # someone rewrites the file between hash and copy
            super().put_file(key, src)

    store = CasArtifactStore(ChangingStorage(root))
    with pytest.raises(InvalidInput, match="changed while"):
        store.log_file(RUN, source, "f")
    assert tree(root) == {}


def test_delete_removes_a_file_or_a_whole_folder_and_keeps_shared_content(store: CasArtifactStore) -> None:
    store.log_bytes(RUN, b"same", "a/x.txt")
    store.log_bytes(RUN, b"other", "a/deep/y.txt")
    store.log_bytes(RUN, b"kept", "b.txt")
    store.log_bytes(OTHER_RUN, b"same", "x.txt")
    store.delete(RUN, "a/x.txt")
    assert [e.path for e in store.walk(RUN)] == ["a/deep/y.txt", "b.txt"]
    store.delete(RUN, "a")
    assert [e.path for e in store.walk(RUN)] == ["b.txt"]
    assert store.open(OTHER_RUN, "x.txt").read() == b"same"  # the shared blob is still there
    with pytest.raises(NotFound):
        store.delete(RUN, "a")
