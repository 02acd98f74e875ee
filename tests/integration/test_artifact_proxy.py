"""The server's artifact proxy, end to end: SDK -> RestArtifactStore -> server -> artifact store.

Most tests run the real app in-process (``tests.support.InProcessServer``); the streaming proof
runs a real uvicorn process and watches its peak memory while a 300 MB file goes up and down.
What every artifact store must do runs against this proxy in the contract suite
(``tests/contract/test_artifact_stores.py``); this file keeps what is the proxy's own: the wiring,
the SDK end to end, and the HTTP answers.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
import pytest

import shipyard
from shipyard.artifacts import open_artifact_store
from shipyard.artifacts.rest import RestArtifactStore
from shipyard.config import Settings
from shipyard.errors import ArtifactCorrupted, InvalidInput, NotFound, RunNotActive, StoreUnavailable
from shipyard.store.rest import RestStore
from shipyard.tracking.client import default_artifact_uri
from tests.support import BASE, OCTET, InProcessServer, ServerProcess, assert_error_envelope


@pytest.fixture
def client(remote: shipyard.Client) -> shipyard.Client:
    """This file's name for the SDK pointed at the in-process ``server`` (tests/integration/conftest.py)."""
    return remote


@pytest.fixture
def run_id(client: shipyard.Client) -> str:
    return client.create_run(client.create_experiment("proxy")).info.run_id


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def paths(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def raw_asgi(app: Any, method: str, raw_path: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """One request straight into the ASGI app, path bytes untouched (httpx, like browsers,
    resolves literal ``..`` segments before sending; an attacker's client need not)."""

    async def call() -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": unquote(raw_path.decode("latin-1")), "raw_path": raw_path,
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("testserver", 80),
                 "headers": [(b"host", b"testserver"), (b"content-type", b"application/octet-stream"),
                             (b"content-length", str(len(body)).encode())]}
        await app(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    return anyio.run(call)


# -- wiring ----------------------------------------------------------------------------------------


def test_client_of_a_server_sends_artifacts_through_it(server: InProcessServer, client: shipyard.Client) -> None:
    store = client.artifacts
    assert isinstance(store, RestArtifactStore)
    assert store.uri == BASE
    assert store._http.client._transport is server.transport  # one in-process app for both stores
    assert default_artifact_uri(Settings.resolve(env={}, tracking_uri="https://team.example/")) == \
        "https://team.example/"
    # An artifact URI configured explicitly still wins.
    explicit = Settings.resolve(env={}, tracking_uri=BASE, artifact_uri=str(server.root / "mine"))
    assert default_artifact_uri(explicit) == str(server.root / "mine")
    assert isinstance(open_artifact_store("http://elsewhere:5000"), RestArtifactStore)


def test_explicit_stores_round_trip(server: InProcessServer, tmp_path: Path) -> None:
    c = shipyard.Client(store=RestStore(BASE, transport=server.transport),
                        artifact_store=RestArtifactStore(BASE, transport=server.transport))
    try:
        run = c.create_run(c.create_experiment("explicit")).info.run_id
        entry = c.log_text(run, "hello", "notes/hello.txt")
        assert entry.digest == sha(b"hello")
        assert c.artifacts.open(run, "notes/hello.txt").read() == b"hello"
    finally:
        c.close()


# -- round trips -----------------------------------------------------------------------------------


def test_log_list_walk_download(server: InProcessServer, client: shipyard.Client, run_id: str,
                                tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha")
    (src / "sub" / "b.bin").write_bytes(os.urandom(3 << 20))  # several chunks
    (src / "sub" / "same.txt").write_bytes(b"alpha")  # same content: stored once
    single = tmp_path / "model.pkl"
    single.write_bytes(b"weights")

    assert client.log_artifact(run_id, single, "model").path == "model/model.pkl"
    logged = client.log_artifacts(run_id, src, "data")
    assert [e.path for e in logged] == ["data/a.txt", "data/sub/b.bin", "data/sub/same.txt"]
    client.log_text(run_id, "ünïcode", "notes/read me.txt")

    assert [(e.path, e.is_dir) for e in client.list_artifacts(run_id)] == \
        [("data", True), ("model", True), ("notes", True)]
    assert [e.path for e in client.list_artifacts(run_id, "data")] == ["data/a.txt", "data/sub"]
    walked = client.artifacts.walk(run_id)
    assert [e.path for e in walked] == ["data/a.txt", "data/sub/b.bin", "data/sub/same.txt",
                                        "model/model.pkl", "notes/read me.txt"]
    assert client.artifacts.walk(run_id, "model/model.pkl")[0].digest == sha(b"weights")

    # The bytes landed in the server's own store, content-addressed.
    assert open_artifact_store(str(server.artifact_root)).walk(run_id) == walked
    assert len([p for p in (server.artifact_root / "blobs").rglob("*") if p.is_file()]) == 4

    folder = client.download_artifacts(run_id, "data", tmp_path / "out")
    assert folder == tmp_path / "out" / "data"
    assert tree(folder) == tree(src)
    assert client.download_artifacts(run_id, "model/model.pkl", tmp_path / "one").read_bytes() == b"weights"
    everything = client.download_artifacts(run_id, "", tmp_path / "all")
    assert (everything / "notes" / "read me.txt").read_text() == "ünïcode"
    with client.artifacts.open(run_id, "data/sub/b.bin") as stream:
        assert stream.read() == (src / "sub" / "b.bin").read_bytes()


# -- integrity ------------------------------------------------------------------------------------


def test_upload_with_a_wrong_digest_stores_nothing(server: InProcessServer, run_id: str) -> None:
    before = tree(server.artifact_root)
    response = server.http.put(f"/api/v1/runs/{run_id}/artifacts/evil.bin", content=b"payload",
                               headers={**OCTET, "x-shipyard-digest": sha(b"something else")})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_INPUT"
    assert "does not match" in response.json()["message"]
    assert tree(server.artifact_root) == before
    assert server.http.get(f"/api/v1/runs/{run_id}/artifacts").json() == {"files": []}

    good = server.http.put(f"/api/v1/runs/{run_id}/artifacts/ok.bin", content=b"payload",
                           headers={**OCTET, "x-shipyard-digest": sha(b"payload")})
    assert good.status_code == 200
    assert good.json() == {"path": "ok.bin", "is_dir": False, "size": 7, "digest": sha(b"payload")}


@pytest.mark.parametrize(("headers", "status"), [
    ({**OCTET, "x-shipyard-digest": "md5:abc"}, 400),
    ({"content-type": "application/json"}, 415),
], ids=["malformed-digest", "json-body"])
def test_upload_refuses_bad_headers(server: InProcessServer, run_id: str, headers: dict[str, str],
                                    status: int) -> None:
    response = server.http.put(f"/api/v1/runs/{run_id}/artifacts/x", content=b"{}", headers=headers)
    assert response.status_code == status
    assert set(response.json()) >= {"error_code", "message"}
    assert_error_envelope(response, status)


def test_a_tampered_blob_is_answered_with_the_error_never_the_bytes(server: InProcessServer,
                                                                   client: shipyard.Client, run_id: str) -> None:
    """The SDK side (``open`` and ``download`` raise, nothing is left behind) is the contract suite's,
    run against this proxy too; this is what the HTTP answer itself carries."""
    entry = client.log_text(run_id, "the real weights", "model.bin")
    blob = next(p for p in (server.artifact_root / "blobs").rglob("*") if p.name == entry.digest[7:])
    blob.write_bytes(b"the evil weights")  # same size, other bytes
    # A file of one piece is read and verified before the answer starts: the answer is the error,
    # never the bytes (larger files are cut off mid-stream: see the real-server test below).
    response = server.http.get(f"/api/v1/runs/{run_id}/artifacts/model.bin")
    assert response.status_code == 500, response.text
    assert response.json()["error_code"] == "ARTIFACT_CORRUPTED"
    assert b"the evil weights" not in response.content


# -- hardening ------------------------------------------------------------------------------------

BAD_SEGMENTS = {
    "dotdot-encoded": "%2e%2e/pwned",
    "dotdot-slash-encoded": "%2e%2e%2fpwned",
    "dotdot-mixed": "..%2fpwned",
    "deep": "..%2f..%2f..%2f..%2foutside%2fpwned",
    "absolute": "/etc/passwd",
    "backslash": "..%5C..%5Cpwned",
    "nul": "pwned%00.txt",
    "control-char": "a%09b",
    "double-encoded": "%252e%252e%252fpwned",
}


@pytest.mark.parametrize("segment", list(BAD_SEGMENTS.values()), ids=list(BAD_SEGMENTS))
def test_bad_paths_are_400_and_touch_nothing(server: InProcessServer, run_id: str, segment: str) -> None:
    outside = server.root / "outside"
    outside.mkdir()
    before = paths(server.root)
    url = f"/api/v1/runs/{run_id}/artifacts/{segment}"
    for response in (server.http.put(url, content=b"owned", headers=OCTET), server.http.get(url),
                     server.http.get(f"/api/v1/runs/{run_id}/artifacts", params={"path": unquote(segment)})):
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_INPUT"
        assert "invalid artifact path" in response.json()["message"]
    assert paths(server.root) == before
    assert list(outside.iterdir()) == []


def test_newline_in_a_path_matches_no_route(server: InProcessServer, run_id: str) -> None:
    before = paths(server.root)
    response = server.http.put(f"/api/v1/runs/{run_id}/artifacts/a%0Apwned", content=b"x", headers=OCTET)
    assert response.status_code == 404  # the router's path pattern stops at a newline
    assert server.http.get(f"/api/v1/runs/{run_id}/artifacts", params={"path": "a\npwned"}).status_code == 400
    assert paths(server.root) == before


@pytest.mark.parametrize("raw", [b"../pwned", b"../../outside/pwned", b"a/../../pwned", b"./../pwned"])
def test_literal_dot_segments_are_400(server: InProcessServer, run_id: str, raw: bytes) -> None:
    before = paths(server.root)
    path = f"/api/v1/runs/{run_id}/artifacts/".encode() + raw
    for method in ("PUT", "GET"):
        status, body = raw_asgi(server.app, method, path, b"owned")
        assert status == 400, body
        assert b"'..' segments are not allowed" in body
    assert paths(server.root) == before
    # A client like httpx resolves such a path before sending; it then names no artifact route.
    assert server.http.put(f"/api/v1/runs/{run_id}/artifacts/{raw.decode()}", content=b"x",
                           headers=OCTET).status_code == 404
    assert paths(server.root) == before


def test_symlink_inside_a_folder_is_refused(client: shipyard.Client, run_id: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("private key")
    folder = tmp_path / "upload"
    (folder / "sub").mkdir(parents=True)
    (folder / "fine.txt").write_text("ok")
    (folder / "sub" / "innocent.txt").symlink_to(secret)
    with pytest.raises(InvalidInput, match=r"innocent\.txt.*symbolic link"):
        client.log_artifacts(run_id, folder)
    linked_dir = tmp_path / "upload2"
    linked_dir.mkdir()
    (linked_dir / "etc").symlink_to(tmp_path)
    with pytest.raises(InvalidInput, match="symbolic link"):
        client.log_artifacts(run_id, linked_dir)
    assert client.artifacts.walk(run_id) == []  # refused before anything was sent


def test_unknown_and_deleted_runs(server: InProcessServer, client: shipyard.Client, run_id: str) -> None:
    missing = "0" * 32
    for response in (server.http.get(f"/api/v1/runs/{missing}/artifacts"),
                     server.http.get(f"/api/v1/runs/{missing}/artifacts/a.txt"),
                     server.http.put(f"/api/v1/runs/{missing}/artifacts/a.txt", content=b"x", headers=OCTET)):
        assert response.status_code == 404
        assert response.json()["error_code"] == "NOT_FOUND"
    with pytest.raises(NotFound):
        client.artifacts.log_bytes(missing, b"x", "a.txt")

    client.log_text(run_id, "kept", "a.txt")
    client.delete_run(run_id)
    with pytest.raises(RunNotActive, match="deleted"):
        client.artifacts.log_bytes(run_id, b"x", "b.txt")
    assert client.artifacts.open(run_id, "a.txt").read() == b"kept"  # reading a deleted run is fine


# -- transport behaviour --------------------------------------------------------------------------


def test_upload_is_retried_with_the_whole_body(tmp_path: Path) -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        if len(bodies) == 1:
            return httpx.Response(503, json={"error_code": "STORE_UNAVAILABLE", "message": "busy"},
                                  headers={"retry-after": "0"})
        return httpx.Response(200, json={"path": "f.bin", "is_dir": False, "size": len(bodies[-1]),
                                         "digest": sha(bodies[-1])})

    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom((2 << 20) + 5))
    store = RestArtifactStore(BASE, httpx.MockTransport(handler))
    entry = store.log_file("r1", source, "f.bin")
    assert bodies == [source.read_bytes()] * 2
    assert entry.digest == sha(source.read_bytes())


def test_unreachable_server_is_store_unavailable(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    store = RestArtifactStore(BASE, httpx.MockTransport(refuse), retries=1)
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        store.list("r1")


# -- streaming proof ------------------------------------------------------------------------------

FILE_MB = 300


@pytest.fixture
def uvicorn_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    spool = tmp_path / "server-tmp"
    spool.mkdir()
    env = {"SHIPYARD_TRACKING_URI": f"sqlite:///{tmp_path / 'server.db'}",
           "SHIPYARD_ARTIFACT_URI": str(tmp_path / "server-artifacts"),
           "SHIPYARD_SERVER_ALLOWED_HOSTS": "127.0.0.1", "TMPDIR": str(spool)}
    argv = [sys.executable, "-m", "uvicorn", "shipyard.server.app:app_from_environment", "--factory",
            "--host", "127.0.0.1", "--log-level", "warning"]
    with ServerProcess(argv, tmp_path, env=env, name="uvicorn") as server:
        assert server.proc is not None
        yield server.url, server.proc, spool


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


@pytest.mark.slow
def test_300mb_streams_both_ways_in_flat_memory(uvicorn_server: tuple[str, subprocess.Popen[bytes], Path],
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, proc, spool = uvicorn_server
    big = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(big, "wb") as out:
        for i in range(FILE_MB):
            piece = block[i:] + block[:i]  # every MiB differs, so nothing compresses or dedups
            out.write(piece)
            digest.update(piece)

    client = shipyard.Client(tracking_uri=url)
    try:
        run_id = client.create_run(client.create_experiment("big")).info.run_id
        client.log_text(run_id, "warm-up", "small.txt")  # imports and pools in place before measuring
        client.download_artifacts(run_id, "small.txt", tmp_path / "warm")
        baseline = _peak_rss_mb(proc.pid)

        started = time.monotonic()
        entry = client.log_artifact(run_id, big)
        uploaded = time.monotonic()
        local = client.download_artifacts(run_id, "big.bin", tmp_path / "down")
        finished = time.monotonic()
        peak = _peak_rss_mb(proc.pid)
    finally:
        client.artifacts.close()  # type: ignore[attr-defined]
        client.close()

    assert entry.digest == "sha256:" + digest.hexdigest()
    assert entry.size == FILE_MB << 20
    with open(local, "rb") as stream:
        assert hashlib.file_digest(stream, "sha256").hexdigest() == digest.hexdigest()
    assert list(spool.iterdir()) == []  # the upload spool file is gone
    with capsys.disabled():
        print(f"\n[streaming] {FILE_MB} MB: upload {uploaded - started:.1f}s, download {finished - uploaded:.1f}s; "
              f"server peak RSS {baseline:.0f} MB -> {peak:.0f} MB (+{peak - baseline:.0f} MB)")
    assert peak - baseline < 150, f"server peak RSS grew by {peak - baseline:.0f} MB for a {FILE_MB} MB file"


@pytest.mark.slow
def test_real_server_refuses_literal_traversal_and_aborts_corrupt_downloads(
        uvicorn_server: tuple[str, subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    url, _, _ = uvicorn_server
    client = shipyard.Client(tracking_uri=url)
    try:
        run_id = client.create_run(client.create_experiment("raw")).info.run_id
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET /api/v1/runs/{run_id}/artifacts/../../../etc/passwd HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert b"'..' segments are not allowed" in answer

        payload = os.urandom(3 << 20)
        entry = client.artifacts.log_bytes(run_id, payload, "w.bin")
        blob = next(p for p in (tmp_path / "server-artifacts" / "blobs").rglob("*") if p.name == entry.digest[7:])
        blob.write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))
        with pytest.raises(ArtifactCorrupted):
            client.download_artifacts(run_id, "w.bin", tmp_path / "dl")
        assert list((tmp_path / "dl").iterdir()) == []
    finally:
        client.artifacts.close()  # type: ignore[attr-defined]
        client.close()


