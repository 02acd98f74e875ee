"""The prediction log: the background writer, drops, partitions, feedback (function and route), the reader."""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import shipyard
from shipyard.artifacts import open_artifact_store
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import parse_time, read_feedback, read_predictions
from shipyard.predictions.format import PREDICTION_SCHEMA, feedback_rows, record_feedback
from shipyard.predictions.writer import PredictionLogger, feedback_route

T0 = int(datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000


def rows(n: int, *, start: int = T0, step: int = 1, deployment: str = "churn-api", role: str = "primary",
         ids: list[str] | None = None) -> list[dict]:
    return [{"prediction_id": ids[i] if ids else uuid.uuid4().hex, "time": start + i * step, "deployment": deployment,
             "model": "churn", "version": "1", "role": role, "inputs": {"x": i * 0.5, "plan": "pro"},
             "outputs": i % 2, "latency_ms": 1.25, "request_id": f"req-{i // 8}"} for i in range(n)]


@pytest.fixture
def artifacts(tmp_path: Path):
    return open_artifact_store(str(tmp_path / "artifacts"))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[shipyard.Client]:
    c = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}", artifact_uri=str(tmp_path / "artifacts"))
    yield c
    c.close()


def files(store, namespace: str = "predictions") -> list[str]:
    try:
        return [e.path for e in store.walk(namespace)]
    except NotFound:
        return []


def read(store, path: str, namespace: str = "predictions"):
    with store.open(namespace, path) as stream:
        return pq.read_table(io.BytesIO(stream.read()))


class SlowStore:
    """An artifact store whose writes wait for ``gate`` when given (or fail while ``fail`` is set)."""

    def __init__(self, inner, gate: threading.Event | None = None) -> None:
        self.inner, self.gate, self.fail, self.calls = inner, gate, False, 0

    def log_bytes(self, namespace: str, data: bytes, path: str):
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail:
            raise OSError("the bucket is unreachable")
        return self.inner.log_bytes(namespace, data, path)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


# -- the writer --------------------------------------------------------------------------------------------
def test_100k_records_are_logged_quickly_and_completely(artifacts) -> None:
    logger = PredictionLogger(artifacts, flush_rows=20_000, flush_seconds=0.5, max_queue=200_000)
    data = rows(100_000)
    started = time.perf_counter()
    for i in range(0, len(data), 64):  # as the serving app does: one call per answered batch
        logger.record(data[i:i + 64])
    recorded = time.perf_counter() - started
    logger.close()
    total = time.perf_counter() - started
    assert recorded < 3.0, f"record() took {recorded:.2f}s for 100k rows"
    assert total < 10.0, f"logging 100k rows took {total:.2f}s"
    assert (logger.written, logger.dropped) == (100_000, 0)
    table = read_predictions_table(artifacts)
    assert table.num_rows == 100_000
    assert table.schema.remove_metadata() == PREDICTION_SCHEMA.remove_metadata()
    assert set(table.column("prediction_id").to_pylist()) == {r["prediction_id"] for r in data}
    first = table.sort_by("time").slice(0, 1).to_pylist()[0]
    assert (first["inputs"], first["outputs"], first["role"], first["request_id"]) == \
        ('{"x":0.0,"plan":"pro"}', "0", "primary", "req-0")


def read_predictions_table(store):
    import pyarrow as pa

    return pa.concat_tables([read(store, p) for p in files(store)])


def test_drops_are_counted_when_the_writer_is_slow(artifacts, caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()
    slow = SlowStore(artifacts, gate=gate)  # every write hangs until the gate opens: the queue cannot drain
    logger = PredictionLogger(slow, flush_rows=100, flush_seconds=0.05, max_queue=500)
    caplog.set_level(logging.WARNING, logger="shipyard.predictions.writer")
    started = time.perf_counter()
    accepted = sum(logger.record(rows(50, start=T0 + i * 50)) for i in range(100))
    recording = time.perf_counter() - started
    gate.set()
    logger.close()
    assert recording < 5, f"record() took {recording:.2f}s: it blocked on the store (a write waits 30 s)"
    assert logger.dropped > 0
    assert accepted + logger.dropped == 5000
    assert logger.written == accepted
    [warning] = [r for r in caplog.records if "dropped" in r.getMessage()]  # rate-limited: one line
    assert "queue_full" in warning.getMessage()
    value = logger.registry.get_sample_value("shipyard_prediction_log_dropped_total",
                                             {"kind": "prediction", "reason": "queue_full"})
    assert value == logger.dropped


def test_drop_counter_goes_to_the_given_registry(artifacts) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    logger = PredictionLogger(artifacts, max_queue=10, flush_seconds=60)
    own = PredictionLogger(artifacts, max_queue=10, flush_seconds=60, registry=registry)
    own.record(rows(15))
    own.close()
    logger.close()
    assert registry.get_sample_value("shipyard_prediction_log_dropped_total",
                                     {"kind": "prediction", "reason": "queue_full"}) == 5


def test_files_are_partitioned_by_deployment_and_hour(artifacts) -> None:
    logger = PredictionLogger(artifacts, flush_rows=10_000, flush_seconds=60)
    # 3 hours x 2 deployments, interleaved in one batch
    mixed = rows(30, step=HOUR // 10) + rows(30, step=HOUR // 10, deployment="fraud api.v2")
    logger.record(mixed[::2] + mixed[1::2])
    logger.close()
    folders = sorted({p.rpartition("/")[0] for p in files(artifacts)})
    assert folders == [f"deployment={d}/hour=2024-05-01T{h}" for d in ("churn-api", "fraud api.v2")
                       for h in ("10", "11", "12")]
    for path in files(artifacts):
        table = read(artifacts, path)
        assert table.num_rows == 10
        assert set(table.column("deployment").to_pylist()) == {path.split("/")[0].removeprefix("deployment=")}
        hours = {t.strftime("%Y-%m-%dT%H") for t in table.column("time").to_pylist()}
        assert hours == {path.split("/")[1].removeprefix("hour=")}


def test_close_flushes_and_later_records_are_counted(artifacts) -> None:
    logger = PredictionLogger(artifacts, flush_rows=1_000_000, flush_seconds=3600)
    logger.record(rows(10))
    assert files(artifacts) == []  # nothing due yet
    logger.close()
    assert logger.written == 10
    assert len(files(artifacts)) == 1
    assert logger.record(rows(3)) == 0
    assert logger.dropped == 3
    assert logger.registry.get_sample_value("shipyard_prediction_log_dropped_total",
                                            {"kind": "prediction", "reason": "closed"}) == 3
    logger.close()  # twice is fine


def test_flush_writes_what_is_queued(artifacts) -> None:
    with PredictionLogger(artifacts, flush_rows=1_000_000, flush_seconds=3600) as logger:
        logger.record(rows(5))
        assert logger.flush(timeout=10)
        assert logger.written == 5


def test_record_never_raises_and_counts_bad_rows(artifacts) -> None:
    logger = PredictionLogger(artifacts, flush_rows=1_000_000, flush_seconds=3600)
    assert logger.record(None) == 0  # not iterable
    good = rows(4)
    good[0]["outputs"] = {"proba": [0.1, 0.9], "obj": object()}  # stored as text, not an error
    bad = [{"prediction_id": "x"}, "not a dict", {**rows(1)[0], "deployment": None}]
    assert logger.record(good + bad) == 7
    logger.close()
    assert logger.written == 4
    assert logger.dropped == 1 + 3
    assert logger.registry.get_sample_value("shipyard_prediction_log_dropped_total",
                                            {"kind": "prediction", "reason": "invalid"}) == 4


def test_write_failures_are_retried_then_counted_and_the_thread_survives(artifacts) -> None:
    flaky = SlowStore(artifacts)
    flaky.fail = True
    logger = PredictionLogger(flaky, flush_rows=1_000_000, flush_seconds=3600)
    logger.record(rows(7))
    assert logger.flush(timeout=10)
    assert (logger.written, logger.dropped, flaky.calls, logger.write_errors) == (0, 7, 3, 3)
    flaky.fail = False
    logger.record(rows(2))
    logger.close()
    assert logger.written == 2


def test_concurrent_producers(artifacts) -> None:
    logger = PredictionLogger(artifacts, flush_rows=500, flush_seconds=0.05, max_queue=1_000_000)
    threads = [threading.Thread(target=lambda: [logger.record(rows(10)) for _ in range(100)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logger.close()
    assert (logger.written, logger.dropped) == (8000, 0)


# -- feedback ----------------------------------------------------------------------------------------------
def test_feedback_rows_name_the_bad_field() -> None:
    pid = uuid.uuid4().hex
    assert feedback_rows({"prediction_id": pid, "value": 1, "deployment": "churn-api", "time": T0}) == \
        [{"prediction_id": pid, "value": 1, "deployment": "churn-api", "time": T0}]
    cases = [({"value": 1, "deployment": "d"}, "prediction_id"),
             ({"prediction_id": "ABC", "value": 1, "deployment": "d"}, "prediction_id"),
             ({"prediction_id": pid, "deployment": "d"}, "value"),
             ({"prediction_id": pid, "value": None, "deployment": "d"}, "value"),
             ({"prediction_id": pid, "value": 1}, "deployment"),
             ({"prediction_id": pid, "value": 1, "deployment": "a/b"}, "deployment"),
             ({"prediction_id": pid, "value": 1, "deployment": "d", "time": "soon"}, "time"),
             ({"prediction_id": pid, "value": 1, "deployment": "d", "label": 1}, "label"),
             ([{"prediction_id": pid, "value": 1, "deployment": "d"}, {"value": 1}], "[1].prediction_id"),
             ([], "body"), ("text", "body"), ([{"prediction_id": pid, "value": 1, "deployment": "d"}, 3], "[1]")]
    for body, name in cases:
        with pytest.raises(InvalidInput) as caught:
            feedback_rows(body)
        assert caught.value.details["field"] == name, body
        assert caught.value.message.startswith(f"{name}:"), caught.value.message


def test_record_feedback_writes_a_file(artifacts) -> None:
    pid = uuid.uuid4().hex
    record_feedback(artifacts, "churn-api", pid, {"churned": True}, time=T0 + 5)
    [path] = files(artifacts, "feedback")
    assert path.startswith("deployment=churn-api/hour=2024-05-01T10/")
    assert read(artifacts, path, "feedback").to_pylist()[0]["value"] == '{"churned":true}'
    with pytest.raises(InvalidInput, match="prediction_id"):
        record_feedback(artifacts, "churn-api", "nope", 1)


class RouteClient:
    """Requests to an app mounting only the feedback route, in process (httpx's ASGI transport)."""

    def __init__(self, sink, **kwargs) -> None:
        from starlette.applications import Starlette

        self.app = Starlette(routes=[feedback_route(sink, **kwargs)])

    def request(self, method: str, url: str, **kwargs):
        import asyncio

        import httpx

        async def main():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://serving") as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(main())

    def post(self, url: str, **kwargs):
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs):
        return self.request("GET", url, **kwargs)


def test_feedback_route(artifacts) -> None:
    logger = PredictionLogger(artifacts, flush_rows=1_000_000, flush_seconds=3600)
    http = RouteClient(logger, deployment="churn-api")
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    answer = http.post("/v1/feedback", json={"prediction_id": a, "value": 1})
    assert (answer.status_code, answer.json()) == (202, {"accepted": 1})
    answer = http.post("/v1/feedback", json=[{"prediction_id": a, "value": 0}, {"prediction_id": b, "value": 1,
                                                                                "deployment": "other"}])
    assert (answer.status_code, answer.json()) == (202, {"accepted": 2})
    bad = http.post("/v1/feedback", json={"prediction_id": a})
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_INPUT"
    assert bad.json()["message"].startswith("value:")
    malformed = http.post("/v1/feedback", content=b"{nope", headers={"content-type": "application/json"})
    assert (malformed.status_code, malformed.json()["error_code"]) == (400, "INVALID_INPUT")
    assert http.get("/v1/feedback").status_code == 405
    logger.close()
    assert sorted(p.split("/")[0] for p in files(artifacts, "feedback")) == ["deployment=churn-api",
                                                                            "deployment=other"]


def test_feedback_route_without_a_default_deployment_and_when_full(artifacts) -> None:
    direct = RouteClient(artifacts)
    pid = uuid.uuid4().hex
    missing = direct.post("/v1/feedback", json={"prediction_id": pid, "value": 1})
    assert missing.status_code == 400
    assert missing.json()["message"].startswith("deployment:")
    assert direct.post("/v1/feedback", json={"prediction_id": pid, "value": 1,
                                             "deployment": "churn-api"}).status_code == 202
    assert len(files(artifacts, "feedback")) == 1  # written before answering
    logger = PredictionLogger(artifacts, max_queue=1, flush_seconds=3600)
    full = RouteClient(logger, deployment="d").post("/v1/feedback", json=[{"prediction_id": pid, "value": 1}] * 2)
    assert (full.status_code, full.json()["error_code"]) == (503, "STORE_UNAVAILABLE")
    logger.close()
    assert logger.dropped == 2


# -- reading -----------------------------------------------------------------------------------------------
class CountingStore(SlowStore):
    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.opened: list[str] = []

    def open(self, namespace: str, path: str):
        self.opened.append(f"{namespace}/{path}")
        return self.inner.open(namespace, path)


def test_read_predictions_reads_only_the_hours_in_range_and_joins_the_latest_feedback(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "artifacts"))
    logger = PredictionLogger(store, flush_seconds=3600)
    logged = rows(40, step=HOUR // 10)  # 10:00 .. 13:54, 4 hours
    logger.record(logged)
    shadow = rows(40, step=HOUR // 10, role="shadow", ids=[r["prediction_id"] for r in logged])
    logger.record(shadow)
    logger.close()
    first, second = logged[12]["prediction_id"], logged[13]["prediction_id"]
    record_feedback(store, "churn-api", first, 0, time=T0 + 2 * HOUR)
    record_feedback(store, "churn-api", first, 1, time=T0 + 5 * HOUR)  # later: wins
    record_feedback(store, "churn-api", second, "yes", time=T0 + 3 * HOUR)

    counting = CountingStore(store)
    c = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}", artifact_store=counting)
    try:
        frame = read_predictions(c, "churn-api", since=T0 + HOUR, until=T0 + 2 * HOUR)
        assert [p.split("/")[2] for p in counting.opened if p.startswith("predictions/")] == ["hour=2024-05-01T11"]
        assert len(frame) == 20  # 10 answers + 10 shadows
        assert list(frame.columns) == [*PREDICTION_SCHEMA.names, "feedback", "feedback_time"]
        assert frame["time"].min() == datetime(2024, 5, 1, 11, tzinfo=UTC)
        assert str(frame["time"].dtype) == "datetime64[ms, UTC]"
        by_id = frame[frame.role == "primary"].set_index("prediction_id")
        assert by_id.loc[first, "feedback"] == "1"
        assert by_id.loc[second, "feedback"] == '"yes"'
        assert by_id["feedback"].isna().sum() == 8
        answers = read_predictions(c, "churn-api", since=datetime(2024, 5, 1, 11, 30), roles=["primary"],
                                   with_feedback=False)
        assert len(answers) == 25
        assert "feedback" not in answers.columns
        assert answers["time"].is_monotonic_increasing
        calls = []
        everything = read_predictions(c, "churn-api", progress=lambda done, total: calls.append((done, total)))
        assert len(everything) == 80
        assert calls[0] == (0, 4)
        assert calls[-1] == (4, 4)
        assert read_predictions(c, "churn-api", since=T0 + 10 * HOUR).empty
        assert list(read_predictions(c, "churn-api", since=T0 + 10 * HOUR).columns) == list(frame.columns)
        fb = read_feedback(c, "churn-api")
        assert sorted(fb["value"]) == ['"yes"', "1"]
        with pytest.raises(NotFound, match="no deployment named 'nope'"):
            read_predictions(c, "nope")
        # Domain code: the registry service of a Store and an ArtifactStore reads the same (no Client).
        from shipyard.auth import Principal
        from shipyard.models.registry import RegistryService

        service = RegistryService(c.store, c.artifacts, Principal("bob"))
        assert read_predictions(service, "churn-api").equals(everything)
        assert read_feedback(service, "churn-api").equals(fb)
    finally:
        c.close()


def test_parse_time() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    ms = int(now.timestamp() * 1000)
    assert parse_time("15m", now=now) == ms - 15 * 60_000
    assert parse_time("1h", now=now) == ms - HOUR
    assert parse_time("2d", now=now) == ms - 48 * HOUR
    assert parse_time("2024-05-01T12:00") == ms
    assert parse_time("2024-05-01T14:00+02:00") == ms
    assert parse_time("2024-05-01T12:00:00Z") == ms
    assert parse_time(now - timedelta(hours=1)) == ms - HOUR
    assert parse_time(None) is None
    assert parse_time(ms) == ms
    for bad in ("yesterday", "", "5 parsecs", "1y"):
        with pytest.raises(InvalidInput, match="since"):
            parse_time(bad)
