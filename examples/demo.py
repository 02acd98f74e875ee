"""The Shipyard demo: the whole loop on the embedded store, in about a minute.

    python examples/demo.py            (what `make demo` runs)

Train three churn models on a logged dataset -> register the best -> evaluate it and promote it
through a quality gate -> serve it in the background -> send predictions and feedback -> explain
one prediction back to its data digest and code commit -> check the traffic for drift -> stop the
server. Everything goes into a fresh folder, ./.shipyard-demo (replaced on every run). Each step
prints the command that does the same by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

import shipyard
from shipyard import deploy

ROOT = Path(".shipyard-demo")
EXPERIMENT, MODEL, DEPLOYMENT, TARGET = "churn-demo", "churn", "churn-api", "churned"
FEATURES = ["tenure_months", "monthly_spend", "support_calls", "age"]
GATE = "metrics.f1 >= 0.6"
SHIFT_REQUEST = "demo-shifted-traffic"
LAUNCH = "from shipyard.cli import main; main()"  # the `shipyard` command, whichever venv runs this
console = Console(highlight=False)


def step(number: int, title: str, *commands: str) -> None:
    console.rule(f"[bold]{number}. {title}")
    for command in commands:
        console.print(f"  [dim]by hand:[/] [cyan]{command}[/]", soft_wrap=True)


def make_data(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Synthetic customers; ``shift`` moves spend and support calls up (the drifted traffic)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "tenure_months": rng.integers(1, 72, rows),
        "monthly_spend": rng.gamma(4.0, 15.0, rows) + shift * 40,
        "support_calls": rng.poisson(1.5 + shift * 3, rows),
        "age": rng.integers(18, 80, rows),
    })
    risk = (-0.06 * frame["tenure_months"] + 0.02 * frame["monthly_spend"] + 0.7 * frame["support_calls"]
            - 0.01 * frame["age"] + rng.normal(0, 0.8, rows))
    frame[TARGET] = (risk > np.median(risk)).astype(int)
    return frame


def train(train_frame: pd.DataFrame, test_frame: pd.DataFrame) -> list[tuple[str, str, float]]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    candidates = {  # run name: (estimator, the params worth recording)
        "logreg-C0.01": (make_pipeline(StandardScaler(), LogisticRegression(C=0.01)),
                         {"model": "LogisticRegression", "C": 0.01}),
        "logreg-C1": (make_pipeline(StandardScaler(), LogisticRegression(C=1.0)),
                      {"model": "LogisticRegression", "C": 1}),
        "forest-depth6": (RandomForestClassifier(n_estimators=60, max_depth=6, random_state=0),
                          {"model": "RandomForestClassifier", "n_estimators": 60, "max_depth": 6}),
    }
    X, y = train_frame[FEATURES], train_frame[TARGET]
    results = []
    for name, (model, params) in candidates.items():
        with shipyard.start_run(run_name=name) as run:
            shipyard.seed_everything(0)
            shipyard.log_dataset(train_frame, name="churn-train", context="training")
            shipyard.log_params(params)
            model.fit(X, y)
            predicted = model.predict(test_frame[FEATURES])
            f1 = float(f1_score(test_frame[TARGET], predicted))
            shipyard.log_metrics({"f1": f1, "accuracy": float(accuracy_score(test_frame[TARGET], predicted))})
            shipyard.log_model(model, "model", input_example=X.head(5))
        results.append((name, run.run_id, f1))
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``shipyard deploy run`` in the background on a free port; returns it once it is ready."""
    for _ in range(5):  # a port free when picked can be taken before the server binds it
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-c", LAUNCH, "deploy", "run", DEPLOYMENT, "--port",
                                        str(port), "--poll-seconds", "1"], stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        if process.poll() is None:
            process.kill()
            break
        if "address already in use" not in log.read_text().lower():
            break
    raise SystemExit(f"the server did not start; its output is in {log}:\n{log.read_text()[-2000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)  # what Ctrl-C or Kubernetes sends: the prediction log is flushed
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_log(client: shipyard.Client, prediction_ids: list[str], timeout: float = 30.0) -> pd.DataFrame:
    """The prediction log once it holds ``prediction_ids`` (the server writes it every few seconds)."""
    from shipyard.errors import NotFound
    from shipyard.monitoring import read_predictions

    deadline = time.monotonic() + timeout
    while True:
        try:
            frame = read_predictions(client, DEPLOYMENT)
            if set(prediction_ids) <= set(frame["prediction_id"]):
                return frame
        except NotFound:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the prediction log did not show {len(prediction_ids)} predictions in {timeout:.0f} s")
        time.sleep(0.5)


def drift_step(number: int, client: shipyard.Client, url: str, train_frame: pd.DataFrame) -> None:
    """Drift: send shifted traffic and compare what the deployment saw with the training data."""
    try:
        from shipyard.monitoring import drift
    except (ImportError, AttributeError):  # shipyard.monitoring.drift not installed in this version
        step(number, "Drift report (arrives with shipyard.monitoring.drift)")
        return
    shifted = make_data(300, seed=3, shift=1.0)
    with httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post(f"/v1/models/{DEPLOYMENT}/predict", headers={"x-request-id": SHIFT_REQUEST},
                           json={"inputs": shifted[FEATURES].to_dict("records")})
        answer.raise_for_status()
    logged = wait_for_log(client, answer.json()["prediction_ids"])
    traffic = pd.json_normalize(logged.loc[logged["request_id"] == SHIFT_REQUEST, "inputs"].map(json.loads).tolist())
    reference, current = ROOT / "train.parquet", ROOT / "shifted-traffic.parquet"
    train_frame[FEATURES].to_parquet(reference)
    traffic[FEATURES].to_parquet(current)
    step(number, "Drift: the last hour's traffic against the training data",
         f"shipyard predictions export {DEPLOYMENT} --since 1h --out traffic.parquet",
         f"shipyard drift {reference} {current}")
    report = drift(train_frame[FEATURES], traffic[FEATURES])
    console.print(f"  drifted columns: [bold]{', '.join(report.drifted_columns) or 'none'}[/] "
                  f"({len(traffic)} shifted requests against {len(train_frame)} training rows)")


def main() -> None:
    started = time.monotonic()
    if ROOT.exists():
        shutil.rmtree(ROOT)
    ROOT.mkdir()
    tracking_uri, artifacts = f"sqlite:///{ROOT / 'shipyard.db'}", str(ROOT / "artifacts")
    # The server below is another process: it finds the store through the same variables.
    os.environ.update(SHIPYARD_TRACKING_URI=tracking_uri, SHIPYARD_ARTIFACT_URI=artifacts)
    console.print(Panel.fit(f"Shipyard demo: the whole loop on the embedded store in [bold]{ROOT.resolve()}[/]\n"
                            f"To repeat a step by hand, first: [cyan]export SHIPYARD_TRACKING_URI={tracking_uri} "
                            f"SHIPYARD_ARTIFACT_URI={artifacts}[/]"))
    shipyard.set_tracking_uri(tracking_uri)
    client = shipyard.Client(tracking_uri=tracking_uri, artifact_uri=artifacts)
    data = make_data(3000, seed=1)
    train_frame, test_frame = data.iloc[:2400].reset_index(drop=True), data.iloc[2400:].reset_index(drop=True)
    test_file = ROOT / "test.parquet"
    test_frame.to_parquet(test_file)

    step(1, "Train three models, each logging its training data (digest + profile)",
         f"shipyard runs list --experiment {EXPERIMENT}", "shipyard datasets list")
    shipyard.set_experiment(EXPERIMENT)
    results = train(train_frame, test_frame)
    table = Table("run", "id", "f1 (held out)")
    for name, run_id, f1 in sorted(results, key=lambda r: -r[2]):
        table.add_row(name, run_id[:8], f"{f1:.3f}")
    console.print(table)

    best_name, best_run, _ = max(results, key=lambda r: r[2])
    step(2, f"Register the best ({best_name}) as {MODEL} version 1",
         f"shipyard models register runs:/{best_run}/model {MODEL}")
    version = client.register_model(f"runs:/{best_run}/model", MODEL).version

    uri = f"models:/{MODEL}/{version}"
    step(3, "Evaluate it on held-out data, approve it, promote it to production through a gate",
         f"shipyard models evaluate {uri} --data {test_file} --target {TARGET}",
         f'shipyard models approve {MODEL} {version} --comment "demo"',
         f'shipyard models promote {MODEL} {version} --to production --require "{GATE}"')
    evaluation = client.evaluate_model(uri, test_file, target=TARGET)
    client.approve_model_version(MODEL, version, comment="demo")
    promoted = client.promote_model(MODEL, version, "production", require=[GATE])
    console.print(f"  evaluation run {evaluation.run_id[:8]}: " + ", ".join(
        f"{k} {v:.3f}" for k, v in evaluation.metrics.items() if k in ("f1", "accuracy", "roc_auc")))
    for gate in promoted.gates:
        console.print(f"  gate {gate.gate}: {'[green]pass[/]' if gate.passed else '[red]FAIL[/]'} ({gate.reason})")
    if not promoted.promoted:
        raise SystemExit("the gate refused the model: nothing to serve")

    step(4, "Deploy production and serve it in the background",
         f"shipyard deploy create {DEPLOYMENT} --model models:/{MODEL}@production",
         f"shipyard deploy run {DEPLOYMENT} --port 8080 &")
    deploy.create_deployment(client, DEPLOYMENT, f"models:/{MODEL}@production")
    server, url = start_server(ROOT / "server.log")
    try:
        console.print(f"  serving {DEPLOYMENT} at {url} (log: {ROOT / 'server.log'})")
        step(5, "Send predictions, then the truth for them as feedback",
             f"curl -s {url}/v1/models/{DEPLOYMENT}/predict -H 'content-type: application/json' "
             f"-d '{{\"inputs\": [{json.dumps(test_frame[FEATURES].iloc[0].to_dict())}]}}'",
             f"curl -s {url}/v1/feedback -H 'content-type: application/json' "
             "-d '{\"prediction_id\": \"<id>\", \"value\": 1}'")
        rows = test_frame.head(20)
        with httpx.Client(base_url=url, timeout=30) as http:
            answer = http.post(f"/v1/models/{DEPLOYMENT}/predict", json={"inputs": rows[FEATURES].to_dict("records")})
            answer.raise_for_status()
            ids = answer.json()["prediction_ids"]
            feedback = http.post("/v1/feedback", json=[{"prediction_id": pid, "value": int(truth)}
                                                       for pid, truth in zip(ids, rows[TARGET], strict=True)])
            feedback.raise_for_status()
        right = sum(int(p == t) for p, t in zip(answer.json()["predictions"], rows[TARGET], strict=True))
        console.print(f"  {len(ids)} predictions by {answer.json()['version']} ({right} right), "
                      f"{feedback.json()['accepted']} feedback values accepted")

        wait_for_log(client, ids)
        step(6, "Where did this prediction come from? Back to the data digest and the commit",
             f"shipyard lineage explain prediction:{DEPLOYMENT}/{ids[0]}")
        explained = subprocess.run([sys.executable, "-c", LAUNCH, "lineage", "explain",
                                    f"prediction:{DEPLOYMENT}/{ids[0]}"], capture_output=True, text=True,
                                   env={**os.environ, "COLUMNS": str(console.width)}, check=False)
        if explained.returncode:
            raise SystemExit(f"lineage explain failed: {explained.stderr}")
        console.print(explained.stdout, markup=False, highlight=False, end="")

        drift_step(7, client, url, train_frame)
    finally:
        step(8, "Stop the server", f"kill {server.pid}  # or Ctrl-C in its terminal")
        stop_server(server)
        client.close()

    console.rule("[bold]Where to look next")
    for command, what in ((f"shipyard runs list --experiment {EXPERIMENT}", "the runs, their params and metrics"),
                          (f"shipyard models history {MODEL}", "every registry change, with who and why"),
                          (f"shipyard lineage show models:/{MODEL}@production", "what made the production model"),
                          (f"shipyard deploy status {DEPLOYMENT}", "what the deployment serves"),
                          (f"shipyard predictions export {DEPLOYMENT} --since 1h --out predictions.parquet",
                           "the logged predictions with their feedback"),
                          ("shipyard ui", "the same in the browser: runs, compare, registry, lineage"),
                          ("shipyard --help", "every command")):
        console.print(f"  [cyan]{command}[/]  [dim]# {what}[/]", soft_wrap=True)
    console.print(f"  (with SHIPYARD_TRACKING_URI={tracking_uri} SHIPYARD_ARTIFACT_URI={artifacts}; "
                  "docs in docs/*.md)")
    console.print(f"[green]Done in {time.monotonic() - started:.0f} s.[/]")


if __name__ == "__main__":
    main()
