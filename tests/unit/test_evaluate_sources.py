"""Evaluating a registered version reads the package the registry vouches for, never a local path
that an external source happens to spell (``pkg:model`` is a relative path to ``Path``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import shipyard
from shipyard.errors import InvalidInput
from shipyard.models.evaluate import evaluate
from shipyard.models.package import save_model
from shipyard.models.sources import EXTERNAL_TAG


def test_evaluating_an_external_version_never_reads_a_local_folder(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "y": [0, 1, 0, 1]})
    monkeypatch.chdir(tmp_path)
    save_model(LogisticRegression().fit(frame[["a"]], frame["y"]), tmp_path / "pkg:model",
               input_example=frame[["a"]])  # a folder in the working directory the source also names
    client = shipyard.Client(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "artifacts"))
    try:
        version = client.register_model("pkg:model", "ext")  # a URI of scheme "pkg": recorded as external
        assert version.tags[EXTERNAL_TAG] == "true"
        with pytest.raises(InvalidInput, match="external source 'pkg:model'"):
            evaluate(client, "models:/ext/1", frame, target="y")
        assert client.search_runs([client.get_experiment_by_name("Default").experiment_id]) == []
    finally:
        client.close()
