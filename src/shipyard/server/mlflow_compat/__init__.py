"""The MLflow REST API (tracking, artifact proxy, model registry, logged models): a second
adapter over the same domain code as the native API, so the ``mlflow`` client and every
framework that logs through it work against a Shipyard server unchanged. See docs/mlflow.md."""
