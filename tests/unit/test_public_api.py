"""The public surface is pinned, and ``import shipyard`` stays light."""

from __future__ import annotations

import inspect
import subprocess
import sys

import shipyard

PUBLIC = {
    "ActiveRun", "Client", "Settings", "__version__", "active_run", "create_experiment", "delete_tag",
    "download_artifacts", "end_run", "flush", "get_experiment", "get_experiment_by_name",
    "get_metric_history", "get_run", "get_tracking_uri", "list_artifacts", "log_artifact",
    "log_artifacts", "log_dict", "log_figure", "log_metric", "log_metrics", "log_param", "log_params",
    "log_model", "load_model", "register_model", "set_alias", "delete_alias", "promote_model",
    "search_registered_models", "search_model_versions", "evaluate_model", "log_dataset",
    "log_text", "search_runs", "seed_everything", "set_experiment", "set_tag", "set_tags",
    "set_tracking_uri", "start_run", "step", "pipeline", "tune",
}


def test_all_is_pinned() -> None:
    assert set(shipyard.__all__) == PUBLIC
    assert len(shipyard.__all__) == len(PUBLIC)


def test_all_names_exist_and_nothing_else_is_public() -> None:
    for name in shipyard.__all__:
        assert hasattr(shipyard, name), name
    # Submodules become attributes once imported anywhere; everything else must be in __all__.
    extra = {n for n, v in vars(shipyard).items()
             if not n.startswith("_") and not inspect.ismodule(v)} - set(shipyard.__all__)
    assert extra == set()


def test_import_shipyard_pulls_in_no_heavy_module() -> None:
    heavy = ["sqlalchemy", "alembic", "pandas", "numpy", "fastapi", "starlette", "typer", "rich", "yaml",
             "matplotlib", "sklearn", "psycopg", "subprocess", "importlib.metadata"]
    code = ("import sys, shipyard\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at `import shipyard`: {out.stdout.strip()}"
