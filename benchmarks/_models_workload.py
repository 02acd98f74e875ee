"""The workload both halves of the models benchmark run, and the timing loop they share.

Imported by ``_models_shipyard.py`` (project venv) and ``_models_mlflow.py`` (``.bench/mlflow-venv``)
and by ``models.py``, which only uses the dataclasses (numpy, pandas and scikit-learn are imported
inside the functions that need them). A half supplies a :class:`Tool`, a thin adapter over its own
public API; everything else (data, pipeline, what is timed, how results are checked) is written
once here, so both tools are measured by the same code.

Protocol (as in ``_workload.py``): a half takes ``--sizes JSON --workdir DIR [--profile DIR]``,
reports progress as ``@@bench`` lines on stderr (never inside a timed section) and prints one
JSON object of its figures as the last line of stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import _workload as w

SEED = 20_240_601
MODEL_NAME = "bench"
ALIAS = "champion"
MODEL_URI = f"models:/{MODEL_NAME}@{ALIAS}"
ARTIFACT_PATH = "model"
EXPERIMENT = "models"
STEPS = ("log_model", "set_alias", "load_model", "predict")  # the parts of one round trip


@dataclass(frozen=True)
class Sizes:
    rows: int = 5_000  # training rows; the pipeline is fitted once per half, untimed
    features: int = 20
    example_rows: int = 5  # input_example
    predict_rows: int = 1_000  # the DataFrame of the first predict
    round_trips: int = 7  # each in a fresh SQLite store and artifact folder; median
    loads: int = 15  # load_model by alias, each into a fresh folder; median

    @classmethod
    def quick(cls) -> Sizes:
        return cls(round_trips=3, loads=5)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Sizes:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Timing:
    seconds: float  # median of samples
    samples: list[float]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Timing:
        return cls(seconds=statistics.median(samples), samples=list(samples))


@dataclass(frozen=True)
class Recorded:
    """What a tool stored for the model: the package's files and the requirements it wrote down."""

    files: list[str]
    requirements: list[str]
    format: str


@dataclass(frozen=True)
class SideResult:
    tool: str
    version: str
    libraries: dict[str, str]  # numpy, pandas, scikit-learn, skops in this half's venv
    data_digest: str  # both halves must have trained on the same data...
    predictions_digest: str  # ...and predict the same labels
    round_trip: Timing
    steps: dict[str, Timing]  # per step of the timed round trips
    first_round_trip: float  # the untimed warm-up: the first in the process, imports included
    load: Timing
    recorded: Recorded

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SideResult:
        return cls(**{
            **raw,
            "round_trip": Timing(**raw["round_trip"]),
            "steps": {k: Timing(**v) for k, v in raw["steps"].items()},
            "load": Timing(**raw["load"]),
            "recorded": Recorded(**raw["recorded"]),
        })


# --- the data and the model ------------------------------------------------------------------


@dataclass
class Workload:
    pipeline: Any  # fitted sklearn Pipeline(StandardScaler, LogisticRegression)
    example: Any  # DataFrame, the input_example
    frame: Any  # DataFrame of ``predict_rows`` rows, not used in training
    expected: Any  # the pipeline's own predictions on ``frame``
    data_digest: str


def make_workload(sizes: Sizes) -> Workload:
    """Seeded data (binary target from a noisy linear score) and the pipeline, fitted once."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(SEED)
    total = sizes.rows + sizes.predict_rows
    x = rng.standard_normal((total, sizes.features)) * rng.uniform(0.5, 5.0, sizes.features)
    score = x @ rng.standard_normal(sizes.features) + rng.standard_normal(total)
    y = (score > 0).astype("int64")
    columns = [f"f{i:02d}" for i in range(sizes.features)]
    train = pd.DataFrame(x[: sizes.rows], columns=columns)
    frame = pd.DataFrame(x[sizes.rows :], columns=columns)
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1_000))])
    pipeline.fit(train, y[: sizes.rows])
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:16]
    return Workload(pipeline, train.iloc[: sizes.example_rows].copy(), frame, pipeline.predict(frame), digest)


def predictions_digest(predictions: Any) -> str:
    import numpy as np

    return hashlib.sha256(np.asarray(predictions).astype("int64").tobytes()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("numpy", "pandas", "scikit-learn", "skops"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "not installed"
    return found


# --- what a half supplies ----------------------------------------------------------------------


class Tool(Protocol):
    name: str

    def use_store(self, folder: Path) -> None:
        """Track and register to a new SQLite database and artifact folder inside ``folder``."""

    def run(self) -> AbstractContextManager[str]:
        """Start a run in the current store; yields its id and ends it on exit."""

    def log_model(self, workload: Workload) -> int:
        """Log the pipeline (with the input example) and register it as ``bench``; its version."""

    def set_alias(self, version: int) -> None:
        """Point ``champion`` at ``version``."""

    def load_model(self, dst: Path) -> Any:
        """``load_model("models:/bench@champion")`` with a fresh, empty download folder ``dst``."""

    def predict(self, model: Any, frame: Any) -> Any:
        """The loaded model's predictions on ``frame``."""

    def run_id_of(self, model: Any) -> str:
        """The run the loaded model came from (checks that the alias named the version just made)."""

    def recorded(self, model: Any, dst: Path) -> Recorded:
        """What the package in ``dst`` holds: its files and recorded requirements."""


class BenchFailure(RuntimeError):
    """A half loaded a different model or predicted something else: exit 2, no figures."""


# --- timing ----------------------------------------------------------------------------------


class Profiler:
    """cProfile switched on only inside the timed sections; one profile per part, written to
    ``DIR/models-TOOL-PART.prof`` (read it with ``python -m pstats``)."""

    def __init__(self, folder: Path | None, tool: str, parts: Sequence[str]) -> None:
        import cProfile

        self.folder, self.tool = folder, tool
        self.profiles = {p: cProfile.Profile() for p in parts} if folder is not None else {}

    def timed(self, part: str) -> AbstractContextManager[Any]:
        """Wrap a timed section of ``part``; sections of one part accumulate into its profile."""
        return self.profiles[part] if self.folder is not None else _null()

    def dump(self) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for part, profile in self.profiles.items():
            profile.dump_stats(self.folder / f"models-{self.tool}-{part}.prof")


@contextmanager
def _null() -> Iterator[None]:
    yield


def check(tool: Tool, model: Any, predictions: Any, run_id: str, workload: Workload, dst: Path) -> None:
    """The load downloaded into ``dst`` (no in-memory cache), came from ``run_id`` and predicts the
    pipeline's own labels."""
    import numpy as np

    if not any(p.is_file() for p in dst.rglob("*")):
        raise BenchFailure(f"{tool.name}: load_model left {dst} empty: the model did not come from the store")
    if tool.run_id_of(model) != run_id:
        raise BenchFailure(f"{tool.name}: {MODEL_URI} loaded the model of run {tool.run_id_of(model)}, "
                           f"not of run {run_id} that was just logged")
    if not np.array_equal(np.asarray(predictions), workload.expected):
        raise BenchFailure(f"{tool.name}: the loaded model's predictions differ from the pipeline's own")


def round_trip(tool: Tool, workload: Workload, folder: Path, profile: AbstractContextManager[Any]) -> dict[str, float]:
    """One timed round trip in a fresh store: log + register, alias, load by alias, first predict."""
    tool.use_store(folder)
    dst = folder / "download"
    dst.mkdir()
    with tool.run() as run_id, profile:
        t0 = time.perf_counter()
        version = tool.log_model(workload)
        t1 = time.perf_counter()
        tool.set_alias(version)
        t2 = time.perf_counter()
        model = tool.load_model(dst)
        t3 = time.perf_counter()
        predictions = tool.predict(model, workload.frame)
        t4 = time.perf_counter()
    check(tool, model, predictions, run_id, workload, dst)
    return {"log_model": t1 - t0, "set_alias": t2 - t1, "load_model": t3 - t2, "predict": t4 - t3,
            "round_trip": t4 - t0}


def measure(tool: Tool, version: str, sizes: Sizes, workdir: Path, profile_dir: Path | None) -> SideResult:
    """Every figure of one half (see models.py for what is measured and why)."""
    w.start(f"{tool.name}: generating data and fitting the pipeline (untimed)")
    workload = make_workload(sizes)
    w.done(f"{sizes.rows:,} rows x {sizes.features} features, pipeline fitted")
    profiler = Profiler(profile_dir, tool.name, ("round_trip", "load"))

    w.start(f"{tool.name}: round trips, each in a fresh SQLite store", total=sizes.round_trips + 1)
    first = round_trip(tool, workload, workdir / "warm-up", _null())["round_trip"]
    w.advance(1, sizes.round_trips + 1)
    trips = []
    for i in range(sizes.round_trips):
        trips.append(round_trip(tool, workload, workdir / f"trip-{i}", profiler.timed("round_trip")))
        w.advance(i + 2, sizes.round_trips + 1)
    total = Timing.of([t["round_trip"] for t in trips])
    w.done(f"{total.seconds * 1000:,.0f} ms (median of {sizes.round_trips}; first in process "
           f"{first * 1000:,.0f} ms)")

    w.start(f"{tool.name}: load_model({MODEL_URI!r}) x {sizes.loads}", total=sizes.loads)
    folder = workdir / "loads"
    tool.use_store(folder)
    with tool.run() as run_id:
        tool.set_alias(tool.log_model(workload))
    tool.load_model(_fresh(folder / "load-warm-up"))
    samples = []
    for i in range(sizes.loads):
        dst = _fresh(folder / f"load-{i}")
        with profiler.timed("load"):
            start = time.perf_counter()
            model = tool.load_model(dst)
            samples.append(time.perf_counter() - start)
        check(tool, model, tool.predict(model, workload.frame), run_id, workload, dst)
        w.advance(i + 1, sizes.loads)
    predictions = tool.predict(model, workload.frame)
    load = Timing.of(samples)
    w.done(f"{load.seconds * 1000:,.1f} ms (median)")
    profiler.dump()

    return SideResult(
        tool=tool.name, version=version, libraries=library_versions(), data_digest=workload.data_digest,
        predictions_digest=predictions_digest(predictions), round_trip=total,
        steps={step: Timing.of([t[step] for t in trips]) for step in STEPS}, first_round_trip=first,
        load=load, recorded=tool.recorded(model, dst))


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


# --- the command line of a half ----------------------------------------------------------------


@dataclass(frozen=True)
class SideArgs:
    sizes: Sizes
    workdir: Path
    profile: Path | None


def parse_args(argv: Sequence[str] | None = None) -> SideArgs:
    parser = argparse.ArgumentParser(description="One half of benchmarks/models.py.")
    parser.add_argument("--sizes", type=Sizes.from_json, default=Sizes())
    parser.add_argument("--workdir", type=Path, required=True, help="a fresh folder")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats of the timed parts here")
    ns = parser.parse_args(argv)
    ns.workdir.mkdir(parents=True, exist_ok=True)
    return SideArgs(sizes=ns.sizes, workdir=ns.workdir, profile=ns.profile)


def emit(result: SideResult) -> None:
    w.emit(**asdict(result))
