"""Artifact storage: path rules, LocalStorage, the store registry, and what only a local folder shows.

What every ArtifactStore must do (round trips, dedup, listing, conflicts, digests checked on read,
concurrent writers, delete) is the contract suite's, run against every backend:
``tests/contract/artifacts_suite.py``.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import shipyard.artifacts as artifacts
from shipyard.artifacts import (
    CasArtifactStore,
    LocalStorage,
    normalize_artifact_path,
    open_artifact_store,
)
from shipyard.errors import InvalidInput, NotFound
from tests.contract.artifacts_suite import BAD_PATHS

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


@pytest.mark.parametrize(("raw", "rule"), BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_normalize_rejects(raw: str, rule: str) -> None:
    with pytest.raises(InvalidInput, match=rule) as info:
        normalize_artifact_path(raw, allow_root=True)
    assert repr(raw) in str(info.value)  # names the path


def test_normalize_rejects_non_strings() -> None:
    with pytest.raises(InvalidInput):
        normalize_artifact_path(b"a")  # type: ignore[arg-type]


# -- CasArtifactStore on LocalStorage: what only a local folder shows (inodes, mtimes, temp names) --


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


def test_listing_ignores_temp_files(store: CasArtifactStore, root: Path) -> None:
    store.log_bytes(RUN, b"x", "a/file.txt")
    (root / "runs" / RUN / "files" / "a" / (".shipyard-tmp-" + "0" * 32)).write_bytes(b"half")
    assert [e.path for e in store.list(RUN, "a")] == ["a/file.txt"]


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


