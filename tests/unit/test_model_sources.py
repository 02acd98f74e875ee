"""Model-version sources resolve inside the store: runs:/<run_id>/<path> and nothing else."""

from __future__ import annotations

import pytest

import shipyard
from shipyard.errors import InvalidInput, NotFound
from shipyard.models.sources import ACCEPTED, MAX_SOURCE_LENGTH, check_version_source, resolve_version_source

RUN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("uri", "expected"), [
    (f"runs:/{RUN}/model", (RUN, "model")),
    (f"runs:/{RUN}/models/churn", (RUN, "models/churn")),
    (f"runs:/{RUN}/./model//", (RUN, "model")),
    (f"runs:/{RUN}/my%20model", (RUN, "my model")),
    (f"runs:/{RUN}/ünï/模型", (RUN, "ünï/模型")),
], ids=["plain", "nested", "canonicalised", "percent-decoded-once", "unicode"])
def test_accepted_sources(uri: str, expected: tuple[str, str]) -> None:
    assert check_version_source(uri) == expected


REFUSED = [
    ("file-uri", "file:///etc/passwd", "file:// scheme points outside the store"),
    ("s3", "s3://other-bucket/x", "s3:// scheme points outside the store"),
    ("http", "http://evil.example/model", "http:// scheme points outside the store"),
    ("https", "https://evil.example/model", "https:// scheme points outside the store"),
    ("models-uri", "models:/churn/1", "not a runs:/ URI"),
    ("absolute-path", "/etc/passwd", "not a runs:/ URI"),
    ("relative-path", "model", "not a runs:/ URI"),
    ("windows-path", "C:\\models\\m", "not a runs:/ URI"),
    ("empty", "", "not a runs:/ URI"),
    ("dotdot", f"runs:/{RUN}/../../x", "'..' segments"),
    ("dotdot-encoded", f"runs:/{RUN}/%2e%2e/x", "'..' segments"),
    ("double-encoded", f"runs:/{RUN}/%252e%252e/x", "double encoding"),
    ("absolute-artifact-path", f"runs:/{RUN}//etc/passwd", "no leading '/'"),
    ("backslash", f"runs:/{RUN}/a\\..\\b", "backslashes"),
    ("control-character", f"runs:/{RUN}/mod\x00el", "control characters"),
    ("empty-path", f"runs:/{RUN}/", "artifact path is empty"),
    ("no-path", f"runs:/{RUN}", "artifact path is empty"),
    ("only-dots", f"runs:/{RUN}/./.", "empty path"),
    ("short-run-id", "runs:/abc123/model", "'abc123' is not a run id"),
    ("uppercase-run-id", f"runs:/{RUN.upper()}/model", "is not a run id"),
    ("non-hex-run-id", f"runs:/{'z' * 32}/model", "is not a run id"),
    ("empty-run-id", "runs://model", "'' is not a run id"),
    ("run-id-with-traversal", "runs:/../etc/passwd", "'..' is not a run id"),
    ("too-long", f"runs:/{RUN}/{'m' * MAX_SOURCE_LENGTH}", f"longer than {MAX_SOURCE_LENGTH}"),
]


@pytest.mark.parametrize(("uri", "why"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_sources_say_what_is_accepted(uri: str, why: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_version_source(uri)
    message = str(caught.value)
    assert why in message
    assert ACCEPTED in message


@pytest.mark.parametrize("value", [None, 42, b"runs:/x/y"], ids=["none", "int", "bytes"])
def test_a_source_must_be_a_string(value: object) -> None:
    with pytest.raises(InvalidInput, match="expected a string"):
        check_version_source(value)  # type: ignore[arg-type]


def test_a_long_refused_source_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_version_source("s3://" + "x" * 5000)
    assert len(str(caught.value)) < 600


# -- against the stored state -------------------------------------------------------------------
@pytest.fixture
def logged(client: shipyard.Client) -> tuple[shipyard.Client, str]:
    """A run with a model folder at ``model`` (its manifest is all the check looks for; loading
    is tested elsewhere) and a plain file at ``notes.txt``."""
    run_id = client.create_run("0").info.run_id
    client.log_text(run_id, "flavors: {}\n", "model/MLmodel")
    client.log_text(run_id, "hello", "notes.txt")
    return client, run_id


def test_resolve_a_logged_model(logged: tuple[shipyard.Client, str]) -> None:
    client, run_id = logged
    assert resolve_version_source(client.store, client.artifacts, f"runs:/{run_id}/./model/") == (run_id, "model")


@pytest.mark.parametrize("path", ["nothing-here", "notes.txt", "model/MLmodel"],
                         ids=["missing-folder", "a-file", "the-manifest-itself"])
def test_resolve_refuses_what_is_not_a_logged_model(logged: tuple[shipyard.Client, str], path: str) -> None:
    client, run_id = logged
    with pytest.raises(InvalidInput, match="is not a logged model"):
        resolve_version_source(client.store, client.artifacts, f"runs:/{run_id}/{path}")


def test_resolve_an_unknown_run(client: shipyard.Client) -> None:
    with pytest.raises(NotFound, match=RUN):
        resolve_version_source(client.store, client.artifacts, f"runs:/{RUN}/model")


def test_resolve_checks_the_shape_before_the_store(client: shipyard.Client) -> None:
    with pytest.raises(InvalidInput, match="file:// scheme"):
        resolve_version_source(client.store, client.artifacts, "file:///etc/passwd")
