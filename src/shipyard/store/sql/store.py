"""SqlStore: the Store on SQLite (embedded default, and ``:memory:``) and PostgreSQL."""

from __future__ import annotations

from shipyard.store.sql.auth import SqlAuthStore
from shipyard.store.sql.database import Database
from shipyard.store.sql.datasets import SqlDatasetStore
from shipyard.store.sql.deployments import SqlDeploymentStore
from shipyard.store.sql.engine import normalize_url
from shipyard.store.sql.experiments import SqlExperimentStore
from shipyard.store.sql.lineage import SqlLineageStore
from shipyard.store.sql.logged_models import SqlLoggedModelStore
from shipyard.store.sql.metrics import SqlMetricStore
from shipyard.store.sql.monitors import SqlMonitorStore
from shipyard.store.sql.registry import SqlModelStore
from shipyard.store.sql.runs import SqlRunStore
from shipyard.store.sql.schema import ensure_schema


class SqlStore:
    """Open (and for an empty database, create) a tracking store at ``uri``.

    Raises ``SchemaOutOfDate`` for a database written by an older Shipyard, and
    ``StoreUnavailable`` when the database cannot be reached.
    """

    def __init__(self, uri: str, *, busy_timeout_seconds: float = 60.0) -> None:
        self.db = Database(normalize_url(uri), busy_timeout_seconds=busy_timeout_seconds)
        try:
            ensure_schema(self.db)
        except BaseException:
            self.db.dispose()
            raise
        self.experiments = SqlExperimentStore(self.db)
        self.runs = SqlRunStore(self.db)
        self.metrics = SqlMetricStore(self.db)
        self.models = SqlModelStore(self.db)
        self.datasets = SqlDatasetStore(self.db)
        self.lineage = SqlLineageStore(self.db)
        self.logged_models = SqlLoggedModelStore(self.db)
        self.deployments = SqlDeploymentStore(self.db)
        self.monitors = SqlMonitorStore(self.db)
        # Not part of the Store protocol: a remote client administers access through the server.
        self.auth = SqlAuthStore(self.db)

    @property
    def uri(self) -> str:
        return self.db.display_url

    def close(self) -> None:
        self.db.dispose()

    def __repr__(self) -> str:
        return f"SqlStore({self.uri!r})"
