"""Digests of files, folders, globs (with the digest cache) and tables."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shipyard.data.digest as digest_module
from shipyard.data import (
    DigestCache,
    FileDigest,
    default_cache_path,
    digest_file,
    digest_folder,
    digest_glob,
    digest_table,
    glob_root,
)
from shipyard.errors import InvalidInput, NotFound

LONG_AGO = time.time() - 3600  # older than the cache's racy window


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def write(root: Path, files: dict[str, bytes], mtime: float | None = LONG_AGO) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
    return root


def folder_recipe(files: dict[str, bytes]) -> str:
    """The documented recipe, written out independently of the implementation."""
    lines = b"".join(rel.encode() + b"\0" + sha(data).encode() + b"\n"
                     for rel, data in sorted(files.items(), key=lambda item: item[0].encode()))
    return sha(lines)


FILES = {"a.csv": b"x,y\n1,2\n", "sub/b.bin": bytes(range(256)) * 10, "sub/deeper/c.txt": b"", ".hidden": b"h",
         "Z.txt": b"upper case sorts first", "\u00e9t\u00e9.txt": b"non-ascii name"}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path whose bytes are read by the folder hasher."""
    calls: list[str] = []
    original = digest_module.sha256_file

    def counting(path: str | bytes) -> tuple[str, int, os.stat_result]:
        calls.append(os.fsdecode(path))
        return original(path)

    monkeypatch.setattr(digest_module, "sha256_file", counting)
    return calls


# -- files -----------------------------------------------------------------------------------------


def test_file_digest_is_sha256sum(tmp_path: Path) -> None:
    data = os.urandom((5 << 20) // 2 + 17)  # several 1 MiB chunks and a partial one
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert digest_file(path) == sha(data)
    assert digest_file(str(path)) == sha(data)
    if shutil.which("sha256sum"):
        printed = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout
        assert digest_file(path) == f"sha256:{printed.split()[0]}"
    (tmp_path / "empty").write_bytes(b"")
    assert digest_file(tmp_path / "empty") == sha(b"")


def test_file_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no such file: .*absent\.bin"):
        digest_file(tmp_path / "absent.bin")
    with pytest.raises(InvalidInput, match="is a folder; use digest_folder"):
        digest_file(tmp_path)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InvalidInput, match="not a regular file"):
        digest_file(tmp_path / "pipe")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"secret": b"s"}) / "secret"
    path.chmod(0)
    with pytest.raises(InvalidInput, match=r"cannot read .*secret"):
        digest_file(path)
    with pytest.raises(InvalidInput, match=r"cannot read .*secret"):
        digest_folder(tmp_path)


# -- folders ---------------------------------------------------------------------------------------


def test_folder_digest_follows_the_documented_recipe(tmp_path: Path) -> None:
    result = digest_folder(write(tmp_path / "data", FILES))
    assert result.digest == folder_recipe(FILES)
    assert [f.path for f in result.files] == sorted(FILES, key=str.encode)
    assert result.files[0] == FileDigest(".hidden", sha(b"h"), 1)  # nothing ignored, hidden files count
    assert result.size == sum(len(d) for d in FILES.values())
    assert result.hashed == len(FILES)
    assert json.loads(json.dumps(result.to_dict()))["files"][0] == [".hidden", sha(b"h"), 1]


def test_folder_digest_is_independent_of_creation_order_and_metadata(tmp_path: Path) -> None:
    first = write(tmp_path / "one", FILES)
    second = tmp_path / "two"
    for index, rel in enumerate(reversed(list(FILES))):
        write(second, {rel: FILES[rel]}, mtime=LONG_AGO + 1000 * index)
    (second / "empty-folder").mkdir()  # folders without files do not count
    (second / "sub" / "b.bin").chmod(0o600)
    assert digest_folder(first) == digest_folder(second)
    assert digest_folder(first).digest == digest_folder(tmp_path / "two", workers=1).digest


def test_any_change_changes_the_folder_digest(tmp_path: Path) -> None:
    root = write(tmp_path / "data", FILES)
    base = digest_folder(root).digest
    (root / "sub" / "deeper" / "c.txt").write_bytes(b"\0")
    assert digest_folder(root).digest != base
    (root / "sub" / "deeper" / "c.txt").write_bytes(b"")
    assert digest_folder(root).digest == base
    (root / "a.csv").rename(root / "b.csv")
    assert digest_folder(root).digest != base


def test_names_that_are_not_utf8_keep_their_bytes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    raw = os.fsencode(str(root)) + b"/caf\xe9.txt"  # Latin-1 "café": not valid UTF-8
    with open(raw, "wb") as stream:
        stream.write(b"x")
    os.utime(raw, (LONG_AGO, LONG_AGO))
    expected = sha(b"caf\xe9.txt\0" + sha(b"x").encode() + b"\n")
    cache = DigestCache(tmp_path / "cache.db")
    assert digest_folder(root, cache=cache).digest == expected
    again = digest_folder(root, cache=cache)
    assert again.digest == expected
    assert again.hashed == 0
    assert os.fsencode(again.files[0].path) == b"caf\xe9.txt"
    cache.close()


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = digest_folder(tmp_path / "empty")
    assert result.digest == sha(b"")
    assert result.files == ()


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such folder"):
        digest_folder(tmp_path / "absent")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(InvalidInput, match="is a file, not a folder; use digest_file"):
        digest_folder(tmp_path / "file")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidInput, match="workers must be a positive integer"):
            digest_folder(tmp_path, workers=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="cache must be a DigestCache"):
        digest_folder(tmp_path, cache="yes")  # type: ignore[arg-type]
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InvalidInput, match=r"pipe.* is not a regular file"):
        digest_folder(tmp_path)


def test_files_hash_in_parallel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write(tmp_path / "data", {f"f{i}": b"x" * 10 for i in range(4)})
    barrier = threading.Barrier(2, timeout=10)  # two files must be in flight at the same time
    original = digest_module.sha256_file

    def meeting(path: str | bytes) -> tuple[str, int, os.stat_result]:
        barrier.wait()
        return original(path)

    monkeypatch.setattr(digest_module, "sha256_file", meeting)
    assert digest_folder(root, workers=2).digest == folder_recipe({f"f{i}": b"x" * 10 for i in range(4)})


def test_a_file_changing_while_hashed_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write(tmp_path / "data", {"grows.log": b"a"})
    original = digest_module.sha256_file

    def appending(path: str | bytes) -> tuple[str, int, os.stat_result]:
        with open(path, "ab") as stream:
            stream.write(b"more")
        return original(path)

    monkeypatch.setattr(digest_module, "sha256_file", appending)
    with pytest.raises(InvalidInput, match=r"grows\.log' changed while it was being hashed"):
        digest_folder(root)


# -- symlinks --------------------------------------------------------------------------------------


def test_symlinks_inside_the_folder_are_followed(tmp_path: Path) -> None:
    root = write(tmp_path / "data", {"real/a.txt": b"a", "real/b.txt": b"b"})
    (root / "link.txt").symlink_to("real/a.txt")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    expected = {"real/a.txt": b"a", "real/b.txt": b"b", "link.txt": b"a", "alias/a.txt": b"a", "alias/b.txt": b"b"}
    assert digest_folder(root).digest == folder_recipe(expected)
    # the folder itself may be reached through a link
    (tmp_path / "via").symlink_to(root, target_is_directory=True)
    assert digest_folder(tmp_path / "via").digest == folder_recipe(expected)


@pytest.mark.parametrize("make", [
    pytest.param(lambda root, outside: (root / "out.txt").symlink_to(outside / "secret.txt"), id="file-outside"),
    pytest.param(lambda root, outside: (root / "out").symlink_to(outside, target_is_directory=True),
                 id="folder-outside"),
    pytest.param(lambda root, outside: (root / "sneaky").symlink_to("../outside/secret.txt"), id="relative-outside"),
])
def test_symlinks_leading_outside_are_refused(tmp_path: Path, make: Callable[[Path, Path], None]) -> None:
    root = write(tmp_path / "data", {"a.txt": b"a"})
    outside = write(tmp_path / "outside", {"secret.txt": b"s"})
    make(root, outside)
    with pytest.raises(InvalidInput, match="points outside the folder"):
        digest_folder(root)


def test_broken_and_cyclic_symlinks_are_refused(tmp_path: Path) -> None:
    root = write(tmp_path / "data", {"sub/a.txt": b"a"})
    (root / "sub" / "gone").symlink_to(root / "nothing-here")
    with pytest.raises(InvalidInput, match="gone' is broken"):
        digest_folder(root)
    (root / "sub" / "gone").unlink()
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)
    with pytest.raises(InvalidInput, match="a cycle"):
        digest_folder(root)
    (root / "sub" / "up").unlink()
    write(root, {"x/1.txt": b"1", "y/2.txt": b"2"})  # x/to-y -> y and y/to-x -> x: a cycle through two links
    (root / "x" / "to-y").symlink_to(root / "y", target_is_directory=True)
    (root / "y" / "to-x").symlink_to(root / "x", target_is_directory=True)
    with pytest.raises(InvalidInput, match="a cycle"):
        digest_folder(root)


# -- globs -----------------------------------------------------------------------------------------


def test_glob_paths_are_relative_to_the_static_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write(tmp_path / "data", {"train/a.csv": b"a", "train/b.csv": b"b", "train/nested/c.csv": b"c",
                                     "train/notes.txt": b"n", "test/d.csv": b"d"})
    result = digest_glob(f"{root}/train/*.csv")
    assert [f.path for f in result.files] == ["a.csv", "b.csv"]
    assert result.digest == folder_recipe({"a.csv": b"a", "b.csv": b"b"})
    recursive = digest_glob(f"{root}/**/*.csv")
    assert [f.path for f in recursive.files] == ["test/d.csv", "train/a.csv", "train/b.csv", "train/nested/c.csv"]
    # a pattern matching every file of a folder gives the folder's digest
    assert digest_glob(f"{root}/**/*").digest == digest_folder(root).digest
    monkeypatch.chdir(root)
    assert digest_glob("train/*.csv").digest == result.digest  # relative patterns, from the working folder
    assert glob_root("train/**/*.csv") == str(root / "train")
    assert glob_root(f"{root}/train/a.csv") == str(root / "train")
    single = digest_glob("train/a.csv")  # no wildcard: one file, under its own name
    assert single.files == (FileDigest("a.csv", sha(b"a"), 1),)


def test_glob_errors(tmp_path: Path) -> None:
    root = write(tmp_path / "data", {"a.csv": b"a"})
    with pytest.raises(InvalidInput, match="no files match"):
        digest_glob(f"{root}/*.parquet")
    with pytest.raises(InvalidInput, match="non-empty glob"):
        digest_glob("")
    write(tmp_path, {"outside.csv": b"o"})
    (root / "link.csv").symlink_to(tmp_path / "outside.csv")
    with pytest.raises(InvalidInput, match="outside the pattern's root"):
        digest_glob(f"{root}/*.csv")


# -- the cache -------------------------------------------------------------------------------------


def test_cache_hit_skips_reading(tmp_path: Path, counted: list[str]) -> None:
    root = write(tmp_path / "data", FILES)
    with DigestCache(tmp_path / "cache.db") as cache:
        first = digest_folder(root, cache=cache)
        assert len(counted) == len(FILES)
        assert first.hashed == len(FILES)
        counted.clear()
        again = digest_folder(root, cache=cache)
        assert counted == []
        assert again.hashed == 0
        assert again == first
    with DigestCache(tmp_path / "cache.db") as reopened:  # remembered on disk
        assert digest_folder(root, cache=reopened).hashed == 0
        assert digest_glob(f"{root}/**/*.csv", cache=reopened).hashed == 0  # keyed by file: shared
        reopened.clear()
        assert digest_folder(root, cache=reopened).hashed == len(FILES)


def test_changed_files_are_hashed_again(tmp_path: Path, counted: list[str]) -> None:
    root = write(tmp_path / "data", {"same.bin": b"1234", "size.bin": b"1234", "touched.bin": b"1234"})
    cache = DigestCache(tmp_path / "cache.db")
    digest_folder(root, cache=cache)
    counted.clear()
    write(root, {"size.bin": b"12345"})  # same mtime, other size
    write(root, {"touched.bin": b"abcd"}, mtime=LONG_AGO + 5)  # same size, other mtime
    result = digest_folder(root, cache=cache)
    assert sorted(Path(p).name for p in counted) == ["size.bin", "touched.bin"]
    assert result.digest == folder_recipe({"same.bin": b"1234", "size.bin": b"12345", "touched.bin": b"abcd"})
    counted.clear()
    write(root, {"new.tmp": b"1234"})  # replaced by another file (other inode), same size and mtime
    os.replace(root / "new.tmp", root / "same.bin")
    digest_folder(root, cache=cache)
    assert [Path(p).name for p in counted] == ["same.bin"]
    cache.close()


def test_racily_clean_files_are_not_trusted(tmp_path: Path, counted: list[str]) -> None:
    root = write(tmp_path / "data", {"fresh.txt": b"just written"}, mtime=None)
    cache = DigestCache(tmp_path / "cache.db")
    digest_folder(root, cache=cache)
    digest_folder(root, cache=cache)  # mtime within 2 s of the first hash: it could be rewritten unseen
    assert len(counted) == 2
    os.utime(root / "fresh.txt", (LONG_AGO, LONG_AGO))  # settled
    digest_folder(root, cache=cache)
    digest_folder(root, cache=cache)
    assert len(counted) == 3
    cache.close()


def test_cache_lookup_is_one_query_and_forgets_removed_files(tmp_path: Path) -> None:
    root = write(tmp_path / "data", {f"part-{i:04d}.bin": i.to_bytes(2, "big") for i in range(2000)})
    cache = DigestCache(tmp_path / "cache.db")
    digest_folder(root, cache=cache)
    statements: list[str] = []
    connection = cache._connect()
    assert connection is not None
    connection.set_trace_callback(statements.append)
    started = time.perf_counter()
    result = digest_folder(root, cache=cache)
    elapsed = time.perf_counter() - started
    assert result.hashed == 0
    assert [s for s in statements if s.lstrip().upper().startswith("SELECT")] == [statements[0]]
    assert not any(s.lstrip().upper().startswith(("INSERT", "DELETE")) for s in statements)
    # ~15 ms here; loose for slow machines (the counts above already prove the cache answered).
    assert elapsed < 5, f"re-hashing 2,000 unchanged files took {elapsed * 1000:.0f} ms"
    connection.set_trace_callback(None)
    (root / "part-0000.bin").unlink()
    digest_folder(root, cache=cache)
    assert os.fsencode(str(root.resolve() / "part-0000.bin")) not in cache.lookup(str(root.resolve()))
    assert len(cache.lookup(str(root.resolve()))) == 1999
    cache.close()


_CONCURRENT = """
import sys
from shipyard.data import DigestCache, digest_folder
cache = DigestCache(sys.argv[1])
for _ in range(15):
    for folder in sys.argv[2:]:
        digest_folder(folder, cache=cache)
print("ok")
"""


def test_cache_is_safe_for_concurrent_processes(tmp_path: Path, counted: list[str]) -> None:
    folders = [write(tmp_path / f"data{i}", {f"{i}-{j}.bin": os.urandom(64) for j in range(200)}) for i in range(3)]
    # Files modified in the last 2 s are never cached (racy); age them so that what the two
    # processes store does not depend on how fast they run.
    past = time.time() - 60
    for folder in folders:
        for file in Path(folder).iterdir():
            os.utime(file, (past, past))
    db = tmp_path / "shared" / "digests.db"
    procs = [subprocess.Popen([sys.executable, "-W", "error", "-c", _CONCURRENT, str(db), *map(str, order)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for order in (folders, folders[::-1])]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    with DigestCache(db) as cache:  # what the two processes stored is complete and correct
        results = [digest_folder(folder, cache=cache) for folder in folders]
    assert counted == []
    assert [r.digest for r in results] == [digest_folder(folder).digest for folder in folders]


def test_an_unusable_cache_only_warns(tmp_path: Path) -> None:
    root = write(tmp_path / "data", {"a": b"a"})
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not an SQLite database" * 100)
    cache = DigestCache(broken)
    with pytest.warns(RuntimeWarning, match="digest cache .* is not usable"):
        result = digest_folder(root, cache=cache)
    assert result.digest == folder_recipe({"a": b"a"})
    assert digest_folder(root, cache=cache).hashed == 1  # switched off, no second warning


def test_default_cache_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_cache_path({"XDG_CACHE_HOME": "/var/cache/me"}) == Path("/var/cache/me/shipyard/digests.db")
    assert default_cache_path({}) == Path.home() / ".cache" / "shipyard" / "digests.db"
    assert default_cache_path({"XDG_CACHE_HOME": "relative"}) == Path.home() / ".cache" / "shipyard" / "digests.db"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert DigestCache().path == tmp_path / "shipyard" / "digests.db"
    assert DigestCache(tmp_path / "x.db").path == tmp_path / "x.db"


def test_cache_file_uses_wal(tmp_path: Path) -> None:
    with DigestCache(tmp_path / "c.db") as cache:
        digest_folder(write(tmp_path / "d", {"a": b"a"}), cache=cache)
    with sqlite3.connect(tmp_path / "c.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- tables ----------------------------------------------------------------------------------------


def frame(rows: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cities = np.array(["paris", "lyon", "nice", "lille"])
    data = pd.DataFrame({
        "x": rng.standard_normal(rows),
        "n": rng.integers(-50, 50, rows),
        "flag": rng.random(rows) < 0.3,
        "city": cities[rng.integers(0, 4, rows)],
        "kind": pd.Categorical(cities[rng.integers(0, 4, rows)]),
        "when": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**6, rows), unit="s"),
        "maybe": pd.array(np.where(rng.random(rows) < 0.1, None, rng.integers(0, 9, rows)), dtype="Int64"),
    })
    data.loc[::17, "x"] = np.nan
    data.loc[::23, "city"] = None
    return data


def test_table_digest_is_stable_across_processes() -> None:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from test_data_digest import frame; "
            "from shipyard.data import digest_table; print(digest_table(frame()))")
    here = str(Path(__file__).parent)
    outputs = {subprocess.run([sys.executable, "-c", code, here], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert outputs == {digest_table(frame())}


def test_table_digest_survives_a_parquet_round_trip(tmp_path: Path) -> None:
    for index in (pd.RangeIndex(0, 3000, 3, name="id"), pd.Index(np.arange(1000) ** 2, name="id")):
        data = frame().set_index(index)  # a named range index is metadata in Parquet, the other a column
        base = digest_table(data)
        data.to_parquet(tmp_path / "d.parquet")
        assert digest_table(pd.read_parquet(tmp_path / "d.parquet")) == base
        assert digest_table(pq.read_table(tmp_path / "d.parquet")) == base
    unnamed = frame()
    unnamed.to_parquet(tmp_path / "u.parquet", index=False)
    assert digest_table(pd.read_parquet(tmp_path / "u.parquet")) == digest_table(unnamed)
    filtered = unnamed[unnamed["n"] > 0]  # an unnamed, non-range index: stored as __index_level_0__
    filtered.to_parquet(tmp_path / "f.parquet")
    assert "__index_level_0__" in pq.read_schema(tmp_path / "f.parquet").names
    assert digest_table(pq.read_table(tmp_path / "f.parquet")) == digest_table(filtered)
    assert digest_table(pd.read_parquet(tmp_path / "f.parquet")) == digest_table(filtered)


def test_one_cell_changes_the_table_digest() -> None:
    data = frame(200)
    base = digest_table(data)
    edits = {"x": 0.125, "n": 99, "flag": True, "city": "rome", "kind": "lyon",
             "when": pd.Timestamp("2030-01-01", tz="UTC"), "maybe": 3}
    for column, value in edits.items():
        changed = data.copy()
        row = 5 if changed.loc[5, column] != value else 6
        changed.loc[row, column] = value
        assert digest_table(changed) != base, column
    nulled = data.copy()
    nulled.loc[1, "n"] = None  # int -> float with NaN: a different type as well
    assert digest_table(nulled) != base
    assert digest_table(data.iloc[:-1]) != base
    assert digest_table(data.rename(columns={"x": "y"})) != base
    assert digest_table(data[list(reversed(data.columns))]) != base


def test_the_same_data_in_any_container_has_one_digest() -> None:
    data = pd.DataFrame({"a": [1.5, None, 3.0], "b": ["x", None, "z"], "c": [1, 2, 3]})
    arrow = pa.table({"a": [1.5, None, 3.0], "b": pa.array(["x", None, "z"], pa.string()), "c": [1, 2, 3]})
    base = digest_table(data)
    assert digest_table(arrow) == base
    assert digest_table(arrow.to_batches()[0]) == base
    assert digest_table(pl.from_arrow(arrow)) == base
    assert digest_table(pa.concat_tables([arrow.slice(0, 1), arrow.slice(1)])) == base  # chunking
    assert digest_table(arrow.cast(pa.schema([("a", pa.float64()), ("b", pa.large_string()),
                                              ("c", pa.int64())]))) == base
    # NaN == null in floats; string_view == string (categoricals: tests/unit/test_data_table_recipes.py)
    assert digest_table(arrow.set_column(0, "a", pa.array([1.5, float("nan"), 3.0]))) == base
    assert digest_table(arrow.set_column(1, "b", arrow["b"].cast(pa.string_view()))) == base
    # numpy: the columns pd.DataFrame(array) has
    matrix = np.arange(12, dtype=np.float64).reshape(4, 3)
    assert digest_table(matrix) == digest_table(pd.DataFrame(matrix))
    assert digest_table(matrix[:, 0]) == digest_table(pd.Series(matrix[:, 0]))
    records = np.array([(1, 2.0), (3, 4.0)], dtype=[("i", "<i8"), ("f", "<f8")])
    assert digest_table(records) == digest_table(pd.DataFrame(records))
    # a pandas/polars Series is a one-column table
    assert digest_table(data["c"]) == digest_table(data[["c"]])
    assert digest_table(pl.Series("c", [1, 2, 3])) == digest_table(data[["c"]])


def test_the_index_counts_only_when_named() -> None:
    data = frame(50)
    base = digest_table(data)
    assert digest_table(data.set_axis(data.index + 100)) == base
    assert digest_table(data.iloc[::-1].iloc[::-1]) == base
    filtered = data[data["n"] > 0]
    assert digest_table(filtered) == digest_table(filtered.reset_index(drop=True))
    keyed = data.set_index("city")  # named levels come last, where pyarrow puts them in Parquet
    assert digest_table(keyed) == digest_table(data[[*[c for c in data.columns if c != "city"], "city"]])
    assert digest_table(data.rename_axis("row")) != base


def test_bytes_under_nulls_and_slicing_do_not_count() -> None:
    clean = pa.array([1, None, 3], pa.int64())
    garbage = pa.Array.from_buffers(pa.int64(), 3, [clean.buffers()[0], pa.py_buffer(
        np.array([1, 12345, 3], dtype="<i8").tobytes())])
    assert digest_table(pa.table({"v": garbage})) == digest_table(pa.table({"v": clean}))
    strings = pa.array(["ab", None, "c"])
    padded = pa.Array.from_buffers(pa.string(), 3, [strings.buffers()[0],
                                                    pa.py_buffer(np.array([0, 2, 9, 10], dtype="<i4").tobytes()),
                                                    pa.py_buffer(b"abJUNKJUNc")])
    assert digest_table(pa.table({"s": padded})) == digest_table(pa.table({"s": strings}))
    lists = pa.ListArray.from_arrays(pa.array([0, 2, 4, 5], pa.int32()), pa.array([1, 2, 9, 9, 3]),
                                     mask=pa.array([False, True, False]))
    assert digest_table(pa.table({"l": lists})) == digest_table(pa.table({"l": pa.array([[1, 2], None, [3]])}))
    long = pa.table({"v": list(range(100)), "s": [str(i) for i in range(100)]})
    assert digest_table(long.slice(37, 20)) == digest_table(pa.table({"v": list(range(37, 57)),
                                                                      "s": [str(i) for i in range(37, 57)]}))


def test_nested_and_other_types_digest() -> None:
    table = pa.table({
        "l": pa.array([[1, 2], None, []]),
        "st": pa.array([{"a": 1, "b": "x"}, None, {"a": None, "b": "y"}]),
        "m": pa.array([[("k", 1)], None, [("a", 2)]], pa.map_(pa.string(), pa.int64())),
        "d": pa.array([1, 2, None], pa.decimal128(10, 2)),
        "bin": pa.array([b"\x00", None, b"\xff\xfe"]),
        "null": pa.nulls(3),
        "day": pa.array([0, None, 19000], pa.date32()),
    })
    base = digest_table(table)
    assert base == digest_table(table.combine_chunks())
    assert base != digest_table(table.set_column(0, "l", pa.array([[1, 2], None, [0]])))
    assert base != digest_table(table.set_column(1, "st", pa.array([{"a": 1, "b": "x"}, None, {"a": 0, "b": "y"}])))
    assert base != digest_table(table.set_column(1, "st", pa.array([{"a": 1, "b": "x"}, {"a": None, "b": None},
                                                                     {"a": None, "b": "y"}])))  # null row != nulls


def test_empty_tables_have_digests() -> None:
    empty = pa.table({"s": pa.array([], pa.large_string()), "x": pa.array([], pa.float64())})
    assert digest_table(empty) == digest_table(pa.table({"s": pa.chunked_array([], pa.string()),
                                                         "x": pa.chunked_array([], pa.float64())}))
    assert digest_table(empty) != digest_table(empty.select(["x", "s"]))
    assert digest_table(pd.DataFrame()) == digest_table(pa.table({}))


def test_table_digest_follows_the_documented_recipe() -> None:
    def frame_(data: bytes) -> bytes:
        return len(data).to_bytes(8, "little") + data

    a = hashlib.sha256(frame_(bytes([0b101])) + frame_(np.array([1, 0, 3], "<i8").tobytes())).digest()
    s = hashlib.sha256(frame_(b"") + frame_(np.array([0, 1, 1, 3], "<i8").tobytes()) + frame_(b"xyz")).digest()
    header = json.dumps({"columns": [["a", "int64"], ["s", "large_string"]], "rows": 3}, sort_keys=True,
                        separators=(",", ":"))
    table = pa.table({"a": [1, None, 3], "s": ["x", "", "yz"]})
    expected = hashlib.sha256(f"shipyard-table-v1\n{header}\n".encode() + a + s).hexdigest()
    assert digest_table(table, recipe=1) == f"sha256:{expected}"
    # without a dictionary column, recipe 2 differs only by its preamble and its tag
    expected = hashlib.sha256(f"shipyard-table-v2\n{header}\n".encode() + a + s).hexdigest()
    assert digest_table(table) == f"t2:sha256:{expected}"


@pytest.mark.parametrize(("bad", "message"), [
    pytest.param({"a": [1, 2]}, "unsupported data: builtins.dict", id="dict"),
    pytest.param([[1, 2]], "unsupported data: builtins.list", id="list"),
    pytest.param("data.csv", "unsupported data: builtins.str", id="path"),
    pytest.param(np.zeros((2, 2, 2)), "must be 1-D or 2-D", id="3d-array"),
    pytest.param(pd.DataFrame({"mixed": [1, "a", 2.5]}), "cannot represent the DataFrame", id="mixed-objects"),
    pytest.param(pl.DataFrame({"a": [1]}).lazy(), "LazyFrame holds no data yet", id="lazy"),
])
def test_unsupported_tables(bad: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        digest_table(bad)
    if "unsupported data" in message:
        assert "pandas DataFrame" in str(info.value)
        assert "numpy array" in str(info.value)


def test_table_workers_must_be_positive() -> None:
    table = pa.table({"a": [1]})
    assert digest_table(table, workers=1) == digest_table(table, workers=3)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(InvalidInput, match="workers must be a positive integer"):
            digest_table(table, workers=bad)  # type: ignore[arg-type]
