"""The serving benchmark's DataFrame case: what users deploy, next to the tensor case of ``serving.py``.

A scikit-learn ``LogisticRegression`` fitted on a pandas DataFrame with 20 named float columns,
logged with its signature (inferred from a DataFrame example), registered as ``bench-df`` with the
alias ``production`` in a fresh SQLite store, and served by:

* ``shipyard serve models:/bench-df@production`` (one worker, and again with ``--workers 2``);
* ``shipyard deploy run bench-df-api`` with the prediction log on (every answer kept as Parquet);
  after the load the server is stopped and the rows in its log are counted against the requests
  it answered (its own ``/metrics``): every one must be there, none dropped;
* ``mlflow models serve`` of the same estimator saved by ``mlflow.sklearn.save_model`` with the
  same DataFrame example (so it has the same column signature);
* the floor: a bare Starlette endpoint that parses the same JSON and calls ``predict`` on a numpy
  array (the feature-name warning scikit-learn gives for an array is filtered, once, at import).

Each gets one-row ``dataframe_split`` bodies on ``/invocations``, MLflow's own format.
"""

from __future__ import annotations

import json
import pickle
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import server as s
import tracking as t

FEATURES = 20
COLUMNS = [f"f{i:02d}" for i in range(FEATURES)]
MODEL = "bench-df"
DEPLOYMENT = "bench-df-api"

FLOOR_FRAME_APP = '''
"""The framework floor for dataframe_split bodies: parse the JSON, predict on an array, answer."""
import json, os, pickle, warnings

import numpy as np
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

# The model was fitted on a DataFrame: predicting an array makes scikit-learn warn, every call.
warnings.filterwarnings("ignore", message="X does not have valid feature names")
with open(os.environ["BENCH_MODEL_PICKLE"], "rb") as f:
    MODEL = pickle.load(f)


async def predict(request):
    rows = np.asarray(json.loads(await request.body())["dataframe_split"]["data"], dtype=np.float64)
    body = json.dumps({"predictions": MODEL.predict(rows).tolist()})
    return Response(body, media_type="application/json")


async def health(request):
    return Response("ok")


app = Starlette(routes=[Route("/invocations", predict, methods=["POST"]), Route("/health", health)])
'''

SAVE_MLFLOW_FRAME = textwrap.dedent('''
    import json, pickle, sys
    import mlflow.sklearn, pandas as pd
    with open(sys.argv[1], "rb") as f:
        model = pickle.load(f)
    with open(sys.argv[3]) as f:
        example = pd.DataFrame(json.load(f))
    mlflow.sklearn.save_model(model, sys.argv[2], input_example=example)
''')


def split_body(rows: list[list[float]]) -> dict[str, Any]:
    return {"dataframe_split": {"columns": COLUMNS, "data": rows}}


def fit(x: Any, y: Any, work: Path) -> tuple[Any, Path, Path]:
    """(estimator fitted on a DataFrame, its pickle, a JSON example of 5 rows as columns)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(x, columns=COLUMNS)
    estimator = LogisticRegression(max_iter=1_000).fit(frame, y)
    pickled = work / "frame-model.pkl"
    pickled.write_bytes(pickle.dumps(estimator))
    example = work / "frame-example.json"
    example.write_text(json.dumps(frame.head(5).to_dict("list")))
    return estimator, pickled, example


def register(estimator: Any, example: Path, work: Path) -> str:
    """A fresh SQLite store with ``bench-df`` version 1 at ``@production`` and the deployment
    ``bench-df-api`` of it; returns the tracking URI."""
    import pandas as pd

    import shipyard
    from shipyard import deploy

    uri = f"sqlite:///{work / 'frames.db'}"
    client = shipyard.Client(tracking_uri=uri, artifact_uri=str(work / "frames-artifacts"))
    try:
        run_id = client.create_run(client.create_experiment("serving-bench")).info.run_id
        client.log_model(run_id, estimator, "model", input_example=pd.DataFrame(json.loads(example.read_text())))
        client.set_terminated(run_id)
        client.register_model(f"runs:/{run_id}/model", MODEL)
        client.approve_model_version(MODEL, 1)
        client.set_alias(MODEL, "production", 1)
        deploy.create_deployment(client, DEPLOYMENT, f"models:/{MODEL}@production")
    finally:
        client.close()
    return uri


def shipyard_env(uri: str, work: Path) -> dict[str, str]:
    return s.client_env(t.clean_env(SHIPYARD_TRACKING_URI=uri, SHIPYARD_ARTIFACT_URI=str(work / "frames-artifacts")))


def shipyard_cmd(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "shipyard"), *args]


def mlflow_folder(python: Path, pickled: Path, example: Path, work: Path) -> Path:
    folder = work / "mlflow-frame-model"
    if not folder.exists():
        t.run_logged([python, "-c", SAVE_MLFLOW_FRAME, pickled, folder, example], t.LOG_DIR / "serving-mlflow-save.log")
    return folder


def answered(http: httpx.Client, base: str) -> int:
    """Requests a Shipyard server answered with 200, from its /metrics."""
    text = http.get(base + "/metrics").text
    return int(sum(float(v) for v in re.findall(r'^shipyard_serving_requests_total\{[^}]*status="200"[^}]*\} (\S+)$',
                                                text, re.MULTILINE)))


def logged_rows(uri: str, work: Path) -> tuple[int, int]:
    """(rows in the deployment's prediction log, distinct prediction ids among them)."""
    import shipyard
    from shipyard.predictions.reader import read_predictions

    client = shipyard.Client(tracking_uri=uri, artifact_uri=str(work / "frames-artifacts"))
    try:
        frame = read_predictions(client, DEPLOYMENT, since="1d", with_feedback=False)
    finally:
        client.close()
    return len(frame), int(frame["prediction_id"].nunique()) if len(frame) else 0
