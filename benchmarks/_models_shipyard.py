"""Shipyard half of the models benchmark. Runs in the project's venv, in a subprocess of models.py.

Shipyard's public SDK with its defaults: ``start_run()`` captures what it always captures (git
state, system, the installed packages as ``_shipyard/requirements.txt``), outside the timed part
as for MLflow; ``log_model`` writes the manifest with the model's requirements and file digests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import _models_workload as mw

import shipyard

# In a fresh store, the first registration of ``bench`` is version 1. ``shipyard.log_model``
# returns the manifest, not the version, and asking the registry would add a query to the timed
# part; the loaded model's run id is checked afterwards instead (see _models_workload.check).
FIRST_VERSION = 1


class ShipyardTool:
    name = "Shipyard"

    def use_store(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        # The process-wide client is rebuilt from the settings on the next call; the artifact
        # folder is a setting (SHIPYARD_ARTIFACT_URI), the store is the tracking URI.
        os.environ["SHIPYARD_ARTIFACT_URI"] = str(folder / "artifacts")
        shipyard.set_tracking_uri(f"sqlite:///{folder / 'shipyard.db'}")
        shipyard.set_experiment(mw.EXPERIMENT)

    @contextmanager
    def run(self) -> Iterator[str]:
        with shipyard.start_run() as run:
            yield run.run_id

    def log_model(self, workload: mw.Workload) -> int:
        shipyard.log_model(workload.pipeline, mw.ARTIFACT_PATH, input_example=workload.example,
                           registered_model_name=mw.MODEL_NAME)
        return FIRST_VERSION

    def set_alias(self, version: int) -> None:
        shipyard.set_alias(mw.MODEL_NAME, mw.ALIAS, version)

    def load_model(self, dst: Path) -> Any:
        return shipyard.load_model(mw.MODEL_URI, dst_path=dst)

    def predict(self, model: Any, frame: Any) -> Any:
        return model.predict(frame)

    def run_id_of(self, model: Any) -> str:
        return str(model.manifest.run_id)

    def recorded(self, model: Any, dst: Path) -> mw.Recorded:
        files = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
        return mw.Recorded(files=files, requirements=list(model.manifest.requirements),
                           format=str(model.manifest.flavor_options.get("format")))


def main() -> None:
    args = mw.parse_args()
    mw.emit(mw.measure(ShipyardTool(), version("shipyard-mlops"), args.sizes, args.workdir, args.profile))


if __name__ == "__main__":
    main()
