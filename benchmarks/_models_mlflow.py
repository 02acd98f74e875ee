"""MLflow half of the models benchmark. Runs inside ``.bench/mlflow-venv`` (see models.py).

MLflow's public API with its defaults: ``mlflow.sklearn.log_model`` (skops format outside
Databricks, signature inferred from the input example, pip requirements inferred by loading the
model in a subprocess, serving example validated), ``MlflowClient.set_registered_model_alias``
and ``mlflow.pyfunc.load_model``; tracking and registry on one SQLite database per store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _models_workload as mw
import mlflow
import mlflow.pyfunc
import mlflow.sklearn
from mlflow import MlflowClient


class MlflowTool:
    name = "MLflow"

    def __init__(self) -> None:
        self.client: MlflowClient | None = None

    def use_store(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        experiment_id = mlflow.create_experiment(mw.EXPERIMENT, artifact_location=(folder / "artifacts").as_uri())
        mlflow.set_experiment(experiment_id=experiment_id)
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    @contextmanager
    def run(self) -> Iterator[str]:
        with mlflow.start_run() as run:
            yield run.info.run_id

    def log_model(self, workload: mw.Workload) -> int:
        info = mlflow.sklearn.log_model(workload.pipeline, name=mw.ARTIFACT_PATH, input_example=workload.example,
                                        registered_model_name=mw.MODEL_NAME)
        return int(info.registered_model_version)

    def set_alias(self, version: int) -> None:
        assert self.client is not None
        self.client.set_registered_model_alias(mw.MODEL_NAME, mw.ALIAS, str(version))

    def load_model(self, dst: Path) -> Any:
        return mlflow.pyfunc.load_model(mw.MODEL_URI, dst_path=str(dst))

    def predict(self, model: Any, frame: Any) -> Any:
        return model.predict(frame)

    def run_id_of(self, model: Any) -> str:
        return str(model.metadata.run_id)

    def recorded(self, model: Any, dst: Path) -> mw.Recorded:
        files = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
        requirements = next(dst.rglob("requirements.txt"), None)
        lines = requirements.read_text().splitlines() if requirements is not None else []
        flavor = model.metadata.flavors.get("sklearn", {})
        return mw.Recorded(files=files, requirements=[line for line in lines if line.strip()],
                           format=str(flavor.get("serialization_format")))


def main() -> None:
    args = mw.parse_args()
    mw.emit(mw.measure(MlflowTool(), mlflow.__version__, args.sizes, args.workdir, args.profile))


if __name__ == "__main__":
    main()
