"""Shipyard: track, version, register, deploy and monitor machine-learning models.

The public SDK. Everything here is re-exported from the modules that own it; importing
``shipyard`` stays light (no SQLAlchemy, numpy or pandas until first use).
"""

from shipyard._version import __version__
from shipyard.config import Settings
from shipyard.tracking.client import Client
from shipyard.tracking.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_alias,
    delete_tag,
    download_artifacts,
    end_run,
    evaluate_model,
    flush,
    get_experiment,
    get_experiment_by_name,
    get_metric_history,
    get_run,
    get_tracking_uri,
    list_artifacts,
    load_model,
    log_artifact,
    log_artifacts,
    log_dataset,
    log_dict,
    log_figure,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    log_text,
    promote_model,
    register_model,
    search_model_versions,
    search_registered_models,
    search_runs,
    seed_everything,
    set_alias,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

__all__ = [
    "ActiveRun",
    "Client",
    "Settings",
    "__version__",
    "active_run",
    "create_experiment",
    "delete_alias",
    "delete_tag",
    "download_artifacts",
    "end_run",
    "evaluate_model",
    "flush",
    "get_experiment",
    "get_experiment_by_name",
    "get_metric_history",
    "get_run",
    "get_tracking_uri",
    "list_artifacts",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "pipeline",
    "promote_model",
    "register_model",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "seed_everything",
    "set_alias",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "step",
    "tune",
]


def __getattr__(name: str) -> object:
    # shipyard.lineage.explain(...) and shipyard.models.PythonModel work after a bare
    # `import shipyard`, while the import itself stays light.
    if name in ("lineage", "models"):
        import importlib

        return importlib.import_module(f"shipyard.{name}")
    if name in ("step", "pipeline"):  # the pipeline DSL, imported on first use
        from shipyard.pipelines import dsl

        return getattr(dsl, name)
    if name == "tune":  # hyperparameter tuning (Optuna), imported on first use
        from shipyard.pipelines.tune import tune

        return tune
    raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
