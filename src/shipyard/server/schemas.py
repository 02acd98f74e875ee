"""Request bodies of the native API. Pydantic checks types and shapes at the edge (a wrong
type is a 400 naming the field); the tracking domain then checks the rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from shipyard.entities import Relation, RunStatus, VersionStatus, ViewType
from shipyard.entities.auth import DEFAULT_PROJECT

# Bounds on what one request may carry; the domain's rules are tighter still.
Key = Annotated[str, Field(max_length=1000)]
Text = Annotated[str, Field(max_length=10_000)]
MAX_BATCH = 10_000
# A ``projects`` filter (search bodies, repeated ``?projects=`` on lists): None is every project.
MAX_PROJECTS = 1000
Projects = Annotated[list[Key], Field(max_length=MAX_PROJECTS)]
# A client cannot send an empty list this way: it asks for nothing without asking the server.
ProjectsQuery = Annotated[list[str] | None, Query(max_length=MAX_PROJECTS)]
# The model registry's columns: descriptions and approval comments 5,000 characters, sources
# 1,000 (checked by shipyard.models.sources, which names the rule), model cards Markdown.
Description = Annotated[str, Field(max_length=5000)]
Source = Annotated[str, Field(max_length=4096)]
Card = Annotated[str, Field(max_length=1_000_000)]
VersionNumber = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateExperiment(Body):
    name: Text
    tags: dict[Key, Text] = {}
    project: Key = DEFAULT_PROJECT


class RenameExperiment(Body):
    name: Text


class ExperimentTags(Body):
    tags: dict[Key, Text]


class CreateRun(Body):
    experiment_id: Key
    run_name: Text | None = None
    start_time: int | None = None
    user_id: Text = ""
    source: Text = ""
    parent_run_id: Key | None = None
    tags: dict[Key, Text] = {}


class NewRun(Body):
    experiment_id: Key
    run_name: Text
    start_time: int
    user_id: Text = ""
    source: Text = ""
    parent_run_id: Key | None = None


class WriteRun(Body):
    """One run's write in one transaction (``RunStore.write``): optionally create it first."""

    create: NewRun | None = None
    params: Annotated[list[KeyValue], Field(max_length=MAX_BATCH)] = []
    tags: Annotated[list[KeyValue], Field(max_length=MAX_BATCH)] = []
    metrics: Annotated[list[MetricIn], Field(max_length=MAX_BATCH)] = []
    status: RunStatus | None = None
    end_time: int | None = None


class UpdateRun(Body):
    status: RunStatus | None = None
    end_time: int | None = None
    run_name: Text | None = None


class KeyValue(Body):
    key: Key
    value: Text


class LogParams(Body):
    params: Annotated[list[KeyValue], Field(max_length=MAX_BATCH)]


class RunTags(Body):
    tags: Annotated[list[KeyValue], Field(max_length=MAX_BATCH)]


class MetricIn(Body):
    key: Key
    value: float  # also accepts "NaN", "Infinity", "-Infinity"
    step: int = 0
    timestamp: int


class LogMetrics(Body):
    metrics: Annotated[list[MetricIn], Field(max_length=MAX_BATCH)]


class ComparisonIn(Body):
    kind: Literal["metric", "param", "tag", "attribute"]
    key: Key
    op: Literal["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
    value: float | Text | Annotated[list[Text], Field(max_length=1000)] | None = None


class OrderByIn(Body):
    kind: Literal["metric", "param", "tag", "attribute"]
    key: Key
    ascending: bool = True


class SearchRuns(Body):
    """Either a structured ``filter`` (what the SDK sends) or a ``filter_string`` in MLflow's
    grammar (for people with curl), not both; likewise ``order_by``."""

    experiment_ids: Annotated[list[Key], Field(min_length=1, max_length=1000)]
    filter: Annotated[list[ComparisonIn], Field(max_length=100)] | None = None
    filter_string: Text | None = None
    order_by: Annotated[list[OrderByIn | Text], Field(max_length=20)] = []
    view: ViewType = ViewType.ACTIVE_ONLY
    max_results: Annotated[int, Field(ge=1, le=50_000)] = 1000
    page_token: Text | None = None


# -- model registry ------------------------------------------------------------------------
class CreateRegisteredModel(Body):
    name: Text
    description: Description = ""
    tags: Annotated[dict[Key, Text], Field(max_length=MAX_BATCH)] = {}
    project: Key = DEFAULT_PROJECT


class UpdateRegisteredModel(Body):
    description: Description


class RenameRegisteredModel(Body):
    new_name: Text


class RegistryTags(Body):
    tags: Annotated[dict[Key, Text], Field(max_length=MAX_BATCH)]


class CreateModelVersion(Body):
    """``source`` must be ``runs:/<run_id>/<path>`` of a model logged to this server; ``run_id``,
    when given, must be the run the source names."""

    source: Source
    run_id: Key | None = None
    description: Description = ""
    tags: Annotated[dict[Key, Text], Field(max_length=MAX_BATCH)] = {}
    status: VersionStatus = VersionStatus.READY


class UpdateModelVersion(Body):
    description: Description | None = None
    status: VersionStatus | None = None
    card: Card | None = None


class ApproveModelVersion(Body):
    comment: Description = ""


class SetAlias(Body):
    version: VersionNumber


class SearchRegistry(Body):
    """Like :class:`SearchRuns`: a structured ``filter`` (tags and attributes only) or a
    ``filter_string``, not both."""

    filter: Annotated[list[ComparisonIn], Field(max_length=100)] | None = None
    filter_string: Text | None = None
    max_results: Annotated[int, Field(ge=1, le=10_000)] = 100
    page_token: Text | None = None
    order_by: Annotated[list[OrderByIn], Field(max_length=10)] = []
    projects: Projects | None = None  # None: every project; []: none


# -- datasets and lineage -------------------------------------------------------------------
# A digest is checked as sha256:<64 hex> by the router (which names the rule); sources are the
# dataset_versions column (2,000); node refs the lineage_edges column (300). Schema and profile
# are bounded in JSON size by the router (MAX_DATASET_JSON), the batches here.
MAX_EDGES = 1000
MAX_NODES = 1000
MAX_SCHEMA_COLUMNS = 10_000
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
NodeRef = Annotated[str, Field(max_length=300)]


class LogDatasetVersion(Body):
    """The version of a dataset with this content ``digest`` (created when new). A
    ``snapshot_uri`` must be ``runs:/<run_id>/<path>`` of a run of this server."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    digest: Annotated[str, Field(max_length=100)]
    source: Annotated[str, Field(max_length=2000)]
    kind: Literal["file", "folder", "glob", "table"]
    num_rows: Count | None = None
    size_bytes: Count | None = None
    # "schema" would shadow BaseModel.schema(): the field is spelled schema_ here, "schema" on the wire.
    schema_: Annotated[list[dict[Key, Any]], Field(alias="schema", max_length=MAX_SCHEMA_COLUMNS)] = []
    profile: dict[Key, Any] = {}
    snapshot_uri: Source | None = None
    project: Key = DEFAULT_PROJECT  # a dataset keeps its first version's


class EdgeIn(Body):
    source: NodeRef
    target: NodeRef
    relation: Relation
    context: Text = ""
    timestamp: Count = 0  # 0: when the server records it


class AddEdges(Body):
    edges: Annotated[list[EdgeIn], Field(max_length=MAX_EDGES)]


class QueryEdges(Body):
    """The edges into ``nodes`` (``upstream``) or out of them."""

    nodes: Annotated[list[NodeRef], Field(max_length=MAX_NODES)]
    upstream: bool
