"""The model registry over the native API: register, aliases, approvals, bad input, remote SDK.

The server runs in-process (``shipyard.testing.ASGITransport``) and is driven with plain httpx,
as any client would; models are real scikit-learn packages logged through the SDK. The last
test starts a real uvicorn server and points the fluent SDK at it with ``set_tracking_uri``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

import shipyard
from shipyard.config import Settings
from shipyard.errors import ApprovalRequired, InvalidInput, NotFound
from shipyard.server import create_app
from shipyard.server import permissions as perms
from shipyard.server.permissions import ROUTE_PERMISSIONS, Permission
from shipyard.store.rest import RestStore
from shipyard.testing import ASGITransport
from tests.support import assert_error_envelope, uvicorn_thread

BASE = "http://testserver"
API = "/api/v1/registered-models"


def _settings(root: Path, **overrides: object) -> Settings:
    return Settings.resolve(env={}, tracking_uri=f"sqlite:///{root / 'server.db'}",
                            artifact_uri=str(root / "artifacts"), server_allowed_hosts="testserver,127.0.0.1",
                            capture_packages=False, capture_git=False, **overrides)


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({"x": rng.normal(size=80), "z": rng.normal(size=80)})


def _fit(frame: pd.DataFrame, c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c).fit(frame, (frame["x"] + 0.3 * frame["z"] > 0).astype(int))


@dataclass
class Logged:
    run_id: str  # has a scikit-learn model at "model" and a plain file at "notes.txt"
    other_run_id: str  # has another model at "model"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    server = create_app(_settings(tmp_path_factory.mktemp("registry")))
    yield server
    server.state.client.close()


@pytest.fixture(scope="module")
def transport(app: FastAPI) -> Iterator[ASGITransport]:
    t = ASGITransport(app)
    yield t
    t.close()


@pytest.fixture(scope="module")
def http(transport: ASGITransport) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE, transport=transport) as client:
        yield client


@pytest.fixture(scope="module")
def sdk(app: FastAPI, transport: ASGITransport) -> Iterator[shipyard.Client]:
    client = shipyard.Client(settings=app.state.settings.replace(tracking_uri=BASE),
                             store=RestStore(BASE, transport=transport))
    yield client
    client.close()


@pytest.fixture(scope="module")
def logged(sdk: shipyard.Client) -> Logged:
    frame = _frame()
    ids = []
    for c in (0.05, 5.0):
        run_id = sdk.create_run("0").info.run_id
        sdk.log_model(run_id, _fit(frame, c), "model", input_example=frame.head(3))
        ids.append(run_id)
    sdk.log_text(ids[0], "not a model", "notes.txt")
    return Logged(*ids)


def _name(prefix: str = "churn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _model(http: httpx.Client, **body: object) -> str:
    name = str(body.pop("name", _name()))
    response = http.post(API, json={"name": name, **body})
    assert response.status_code == 201, response.text
    return name


def _version(http: httpx.Client, name: str, source_run: str, path: str = "model", **body: object) -> dict:
    response = http.post(f"{API}/{name}/versions", json={"source": f"runs:/{source_run}/{path}", **body})
    assert response.status_code == 201, response.text
    return response.json()


def _history(http: httpx.Client, name: str) -> list[dict]:
    return http.get(f"{API}/{name}/history").json()["events"]


# -- registering --------------------------------------------------------------------------------
def test_register_a_logged_model(http: httpx.Client, logged: Logged) -> None:
    name = _name()
    created = http.post(API, json={"name": name, "description": "churn", "tags": {"team": "growth"}})
    assert created.status_code == 201
    assert created.json() == {"name": name, "description": "churn", "creation_time": created.json()["creation_time"],
                              "last_update_time": created.json()["last_update_time"], "tags": {"team": "growth"},
                              "aliases": {}, "latest_version": None, "protected_aliases": ["production"],
                              "project": "default"}
    first = _version(http, name, logged.run_id, "./model/", description="baseline", tags={"data": "v1"})
    assert (first["version"], first["run_id"], first["status"], first["approval"]) == (1, logged.run_id, "READY", None)
    assert first["source"] == f"runs:/{logged.run_id}/model"  # recorded canonical
    second = _version(http, name, logged.other_run_id, run_id=logged.other_run_id)
    assert second["version"] == 2
    assert http.get(f"{API}/{name}/versions/1").json() == first
    model = http.get(f"{API}/{name}").json()
    assert model["latest_version"] == 2
    events = _history(http, name)
    assert [e["kind"] for e in events] == ["model_created", "version_created", "version_created"]
    assert {e["user"] for e in events} == {"local"}  # the principal, not a user the client claims


def test_update_tags_and_rename(http: httpx.Client, logged: Logged) -> None:
    name = _model(http)
    _version(http, name, logged.run_id)
    assert http.patch(f"{API}/{name}", json={"description": "new"}).json()["description"] == "new"
    assert http.put(f"{API}/{name}/tags", json={"tags": {"a/b": "1", "c": "2"}}).status_code == 200
    assert http.delete(f"{API}/{name}/tags/a/b").status_code == 200
    assert http.get(f"{API}/{name}").json()["tags"] == {"c": "2"}
    card = "# Churn model\n\nTrained on *v1* data.\n"
    updated = http.patch(f"{API}/{name}/versions/1", json={"card": card, "status": "FAILED"}).json()
    assert (updated["card"], updated["status"], updated["description"]) == (card, "FAILED", "")
    assert http.put(f"{API}/{name}/versions/1/tags", json={"tags": {"k": "v", "x": "y"}}).status_code == 200
    assert http.delete(f"{API}/{name}/versions/1/tags/x").status_code == 200
    # Besides the user's tags, registration records the package's flavor and pickle flag.
    assert http.get(f"{API}/{name}/versions/1").json()["tags"] == {
        "k": "v", "shipyard.flavor": "sklearn", "shipyard.pickle_based": "false"}
    new = _name("renamed")
    assert http.post(f"{API}/{name}/rename", json={"new_name": new}).json()["latest_version"] == 1
    assert_error_envelope(http.get(f"{API}/{name}"), 404)
    assert _history(http, new)[-1]["kind"] == "model_renamed"


def test_search_models_and_versions(http: httpx.Client, logged: Logged) -> None:
    prefix = _name("search")
    for n, team in enumerate("aba"):
        _model(http, name=f"{prefix}-{n}", tags={"team": team})
    _version(http, f"{prefix}-0", logged.run_id)
    _version(http, f"{prefix}-0", logged.other_run_id)
    found = http.get(API, params={"filter": f"name LIKE '{prefix}-%' and tags.team = 'a'"}).json()
    assert [m["name"] for m in found["registered_models"]] == [f"{prefix}-0", f"{prefix}-2"]
    page = http.get(API, params={"filter": f"name LIKE '{prefix}-%'", "max_results": 2}).json()
    assert len(page["registered_models"]) == 2
    rest = http.post(f"{API}/search", json={"filter_string": f"name LIKE '{prefix}-%'", "max_results": 2,
                                            "page_token": page["next_page_token"]}).json()
    assert [m["name"] for m in rest["registered_models"]] == [f"{prefix}-2"]
    assert rest["next_page_token"] is None
    versions = http.get("/api/v1/model-versions", params={"filter": f"name = '{prefix}-0'"}).json()
    assert [v["version"] for v in versions["model_versions"]] == [2, 1]
    structured = http.post("/api/v1/model-versions/search", json={"filter": [
        {"kind": "attribute", "key": "name", "op": "=", "value": f"{prefix}-0"},
        {"kind": "attribute", "key": "run_id", "op": "=", "value": logged.other_run_id}]}).json()
    assert [v["version"] for v in structured["model_versions"]] == [2]


# -- aliases and approvals ----------------------------------------------------------------------
def test_alias_set_move_and_delete_with_history(http: httpx.Client, logged: Logged) -> None:
    name = _model(http)
    _version(http, name, logged.run_id)
    _version(http, name, logged.other_run_id)
    assert http.put(f"{API}/{name}/aliases/staging", json={"version": 1}).json()["aliases"] == ["staging"]
    moved = http.put(f"{API}/{name}/aliases/staging", json={"version": 2}).json()
    assert (moved["version"], moved["aliases"]) == (2, ["staging"])
    assert http.get(f"{API}/{name}/aliases/staging").json()["version"] == 2
    assert http.get(f"{API}/{name}").json()["aliases"] == {"staging": 2}
    assert http.delete(f"{API}/{name}/aliases/staging").status_code == 200
    body = assert_error_envelope(http.get(f"{API}/{name}/aliases/staging"), 404)
    assert "staging" in body["message"]
    assert_error_envelope(http.delete(f"{API}/{name}/aliases/staging"), 404)
    moves = [(e["kind"], e["alias"], e["version"], e["previous_version"]) for e in _history(http, name)
             if e["kind"].startswith("alias")]
    assert moves == [("alias_set", "staging", 1, None), ("alias_set", "staging", 2, 1),
                     ("alias_deleted", "staging", None, 2)]


def test_protected_production_needs_an_approval(http: httpx.Client, logged: Logged) -> None:
    name = _model(http)
    _version(http, name, logged.run_id)
    refused = http.put(f"{API}/{name}/aliases/production", json={"version": 1})
    body = assert_error_envelope(refused, 409)
    assert body["error_code"] == "APPROVAL_REQUIRED"
    assert "production" in body["message"]
    assert http.get(f"{API}/{name}").json()["aliases"] == {}
    assert "alias_set" not in [e["kind"] for e in _history(http, name)]

    approved = http.post(f"{API}/{name}/versions/1/approve", json={"comment": "offline eval ok"}).json()
    assert (approved["approval"]["user"], approved["approval"]["comment"]) == ("local", "offline eval ok")
    assert approved["approval"]["timestamp"] > 0
    assert http.put(f"{API}/{name}/aliases/production", json={"version": 1}).status_code == 200
    assert http.get(f"{API}/{name}/aliases/production").json()["version"] == 1

    protected = http.put(f"{API}/{name}/protected-aliases/champion").json()["protected_aliases"]
    assert sorted(protected) == ["champion", "production"]
    _version(http, name, logged.other_run_id)
    assert http.put(f"{API}/{name}/aliases/champion", json={"version": 2}).json()["error_code"] == \
        "APPROVAL_REQUIRED"
    assert http.delete(f"{API}/{name}/protected-aliases/champion").json()["protected_aliases"] == ["production"]
    assert http.put(f"{API}/{name}/aliases/champion", json={"version": 2}).status_code == 200
    kinds = [e["kind"] for e in _history(http, name)]
    assert kinds.count("version_approved") == 1
    assert kinds[-4:] == ["alias_protected", "version_created", "alias_unprotected", "alias_set"]


def test_approval_required_round_trips_through_the_rest_store(sdk: shipyard.Client, logged: Logged) -> None:
    name = _name()
    version = sdk.register_model(f"runs:/{logged.run_id}/model", name)
    with pytest.raises(ApprovalRequired, match="production"):
        sdk.set_alias(name, "production", version.version)
    sdk.store.models.approve_version(name, version.version, user="someone", comment="ok")
    assert sdk.set_alias(name, "production", version.version).aliases == ("production",)
    assert sdk.resolve_model_version(f"models:/{name}@production").version == version.version


def test_the_remote_sdk_deletes_model_and_version_tags(sdk: shipyard.Client, logged: Logged) -> None:
    name = _name()
    sdk.register_model(f"runs:/{logged.run_id}/model", name)
    sdk.set_registered_model_tag(name, "team", "growth")
    sdk.set_model_version_tag(name, 1, "candidate", "yes")
    sdk.delete_registered_model_tag(name, "team")
    sdk.delete_model_version_tag(name, 1, "candidate")
    assert "team" not in sdk.get_registered_model(name).tags
    assert "candidate" not in sdk.get_model_version(name, 1).tags
    with pytest.raises(NotFound, match=f"registered model '{name}' has no tag 'team'"):
        sdk.delete_registered_model_tag(name, "team")
    with pytest.raises(NotFound, match=f"version 1 of model '{name}' has no tag 'candidate'"):
        sdk.delete_model_version_tag(name, 1, "candidate")


def test_deleting_an_aliased_version_needs_force(http: httpx.Client, logged: Logged) -> None:
    name = _model(http)
    _version(http, name, logged.run_id)
    http.put(f"{API}/{name}/aliases/staging", json={"version": 1})
    body = assert_error_envelope(http.delete(f"{API}/{name}/versions/1"), 409)
    assert body["error_code"] == "CONFLICT"
    assert "staging" in body["message"]
    assert http.get(f"{API}/{name}/versions/1").json()["aliases"] == ["staging"]
    assert_error_envelope(http.delete(f"{API}/{name}"), 409)  # nor the model, while aliased
    assert http.delete(f"{API}/{name}/versions/1", params={"force": "true"}).status_code == 200
    assert_error_envelope(http.get(f"{API}/{name}/versions/1"), 404)
    assert http.get(f"{API}/{name}").json()["aliases"] == {}
    assert http.delete(f"{API}/{name}").status_code == 200
    assert_error_envelope(http.get(f"{API}/{name}"), 404)


# -- bad input: a 4xx envelope, and nothing half-written ---------------------------------------
SOURCE_CASES = [
    # (id, status, source template, extra body)
    ("file-uri", 400, "file:///etc/passwd", {}),
    ("local-path", 400, "/etc/passwd", {}),
    ("remote-climbs", 400, "s3://other/a/%2e%2e/%2e%2e/x", {}),
    ("climbs-out-of-the-run", 400, "runs:/{run}/../../x", {}),
    ("climbs-out-encoded", 400, "runs:/{run}/%2e%2e/%2e%2e/x", {}),
    ("absolute-artifact-path", 400, "runs:/{run}//etc/passwd", {}),
    ("backslashes", 400, "runs:/{run}/..\\..\\x", {}),
    ("not-a-run-id", 400, "runs:/../../etc/passwd", {}),
    ("run-id-disagrees", 400, "runs:/{run}/model", {"run_id": "{other}"}),
    ("too-long-source", 400, "runs:/{run}/" + "m" * 2000, {}),
    ("unknown-field", 400, "runs:/{run}/model", {"colour": "red"}),
]


@pytest.mark.parametrize(("status", "source", "extra"), [c[1:] for c in SOURCE_CASES],
                         ids=[c[0] for c in SOURCE_CASES])
def test_bad_version_sources_are_refused(http: httpx.Client, logged: Logged, status: int, source: str,
                                         extra: dict) -> None:
    name = _model(http)
    before = _history(http, name)
    values = {"run": logged.run_id, "other": logged.other_run_id, "unknown": uuid.uuid4().hex}
    body = {"source": source.format(**values), **{k: v.format(**values) for k, v in extra.items()}}
    error = assert_error_envelope(http.post(f"{API}/{name}/versions", json=body), status)
    if status == 400 and "colour" not in extra:
        assert "runs:/" in error["message"] or "percent-decoded" in error["message"]  # says what is wrong
    assert http.get(f"{API}/{name}").json()["latest_version"] is None
    assert _history(http, name) == before


@pytest.mark.parametrize("source", ["s3://other/x", "https://models.example/model.pkl", "runs:/{unknown}/model",
                                    "runs:/{run}/nothing-here", "runs:/{run}/notes.txt"])
def test_sources_the_store_does_not_hold_are_recorded_as_external(http: httpx.Client, logged: Logged,
                                                                  source: str) -> None:
    name = _model(http)
    values = {"run": logged.run_id, "unknown": uuid.uuid4().hex}
    created = http.post(f"{API}/{name}/versions", json={"source": source.format(**values)})
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["tags"]["shipyard.external_source"] == "true"
    # Linked in lineage only to a run that is here; nothing of the source was read.
    assert version["run_id"] == (logged.run_id if "{run}" in source else None)


def test_version_of_an_unknown_model_is_404(http: httpx.Client, logged: Logged) -> None:
    ghost = _name("ghost")
    body = assert_error_envelope(http.post(f"{API}/{ghost}/versions", json={"source": f"runs:/{logged.run_id}/model"}),
                                 404)
    assert ghost in body["message"]
    assert_error_envelope(http.get(f"{API}/{ghost}"), 404)  # not created on the side


def test_duplicate_model_name_is_409(http: httpx.Client) -> None:
    name = _model(http, description="first")
    body = assert_error_envelope(http.post(API, json={"name": name, "description": "second"}), 409)
    assert body["error_code"] == "ALREADY_EXISTS"
    assert http.get(f"{API}/{name}").json()["description"] == "first"
    assert [e["kind"] for e in _history(http, name)] == ["model_created"]


def test_alias_to_a_missing_version_is_404(http: httpx.Client, logged: Logged) -> None:
    name = _model(http)
    _version(http, name, logged.run_id)
    http.put(f"{API}/{name}/aliases/staging", json={"version": 1})
    body = assert_error_envelope(http.put(f"{API}/{name}/aliases/staging", json={"version": 7}), 404)
    assert "7" in body["message"]
    assert http.get(f"{API}/{name}").json()["aliases"] == {"staging": 1}
    assert_error_envelope(http.put(f"{API}/{_name('ghost')}/aliases/staging", json={"version": 1}), 404)


BAD_REQUESTS = [
    # (id, status, method, path, request kwargs, words in the message)
    ("filter-on-metrics", 400, "GET", API, {"params": {"filter": "metrics.acc > 0.9"}}, "cannot filter on metrics"),
    ("filter-syntax", 400, "GET", API, {"params": {"filter": "name LIKE"}}, "invalid filter"),
    ("filter-unknown-attribute", 400, "GET", "/api/v1/model-versions", {"params": {"filter": "colour = 'red'"}},
     "unknown identifier"),
    ("filter-and-filter-string", 400, "POST", f"{API}/search",
     {"json": {"filter": [], "filter_string": "name = 'x'"}}, "not both"),
    ("structured-filter-on-params", 400, "POST", "/api/v1/model-versions/search",
     {"json": {"filter": [{"kind": "param", "key": "lr", "op": "=", "value": "1"}]}}, "takes kind"),
    ("bad-page-token", 400, "GET", API, {"params": {"page_token": "nope"}}, "page token"),
    ("max-results-zero", 400, "GET", API, {"params": {"max_results": 0}}, "max_results"),
    ("name-too-long", 400, "POST", API, {"json": {"name": "m" * 300}}, "at most 256"),
    ("name-far-too-long", 400, "POST", API, {"json": {"name": "m" * 20_000}}, "name"),
    ("name-with-slash", 400, "POST", API, {"json": {"name": "team/churn"}}, "no '/' or '@'"),
    ("name-with-at", 400, "POST", API, {"json": {"name": "churn@prod"}}, "no '/' or '@'"),
    ("name-blank", 400, "POST", API, {"json": {"name": "  "}}, "empty or blank"),
    ("name-control-character", 400, "POST", API, {"json": {"name": "a\nb"}}, "control character"),
    ("path-name-too-long", 400, "GET", f"{API}/{'m' * 1200}", {}, "name"),
    ("description-too-long", 400, "POST", API, {"json": {"name": "x", "description": "d" * 6000}}, "description"),
    ("bad-tag-key", 400, "POST", API, {"json": {"name": "x", "tags": {"../up": "v"}}}, "tag key"),
    ("version-not-a-number", 400, "GET", f"{API}/x/versions/one", {}, "version"),
    ("version-overflow", 400, "GET", f"{API}/x/versions/{2**70}", {}, "version"),
]


@pytest.mark.parametrize(("status", "method", "path", "kwargs", "words"), [c[1:] for c in BAD_REQUESTS],
                         ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_are_answered_with_the_envelope(http: httpx.Client, status: int, method: str, path: str,
                                                     kwargs: dict, words: str) -> None:
    body = assert_error_envelope(http.request(method, path, **kwargs), status)
    assert words in body["message"]
    if method == "POST" and path == API:
        created = http.get(f"{API}/{quote(kwargs['json']['name'][:900], safe='')}")
        assert_error_envelope(created, 404)  # nothing created


@pytest.mark.parametrize(("alias", "words"), [("latest", "reserved"), ("1st", "start with a letter"),
                                              ("has space", "start with a letter"), ("a.b", "start with a letter")])
def test_bad_aliases_are_400(http: httpx.Client, logged: Logged, alias: str, words: str) -> None:
    name = _model(http)
    _version(http, name, logged.run_id)
    body = assert_error_envelope(http.put(f"{API}/{name}/aliases/{alias}", json={"version": 1}), 400)
    assert words in body["message"]
    assert_error_envelope(http.put(f"{API}/{name}/protected-aliases/{alias}"), 400)
    model = http.get(f"{API}/{name}").json()
    assert (model["aliases"], model["protected_aliases"]) == ({}, ["production"])


# -- names that look like paths, through the REST store -----------------------------------------
@pytest.mark.parametrize("name", ["a.", ".b", "with space", "v1.2-rc_3"])
def test_odd_but_legal_names_stay_one_path_segment(sdk: shipyard.Client, logged: Logged, name: str) -> None:
    models = sdk.store.models
    assert models.create_model(name).name == name
    assert models.get_model(name).name == name
    version = models.create_version(name, source=f"runs:/{logged.run_id}/model")
    assert models.set_alias(name, "staging", version.version).name == name
    assert models.get_version_by_alias(name, "staging").version == version.version
    assert (models.history(name)[-1].name, models.history(name)[-1].kind) == (name, "alias_set")
    models.delete_model(name, force=True)
    with pytest.raises(NotFound):
        models.get_model(name)


@pytest.mark.parametrize("name", [".", "..", "..."])
def test_names_of_only_dots_are_refused(sdk: shipyard.Client, name: str) -> None:
    with pytest.raises(InvalidInput, match="not valid"):
        sdk.store.models.create_model(name)


# -- permissions ------------------------------------------------------------------------------------
def test_approving_and_protecting_need_a_maintainer() -> None:
    registry = {name for name, p in ROUTE_PERMISSIONS.items() if p is Permission.MAINTAIN and "model" in name}
    assert registry == {"approve_model_version", "protect_model_alias", "unprotect_model_alias",
                        "ui_approve_model_version"}  # the web UI's approve form


@dataclass(frozen=True)
class _Writer(perms.Principal):
    def can(self, permission: Permission) -> bool:
        return permission in (Permission.PUBLIC, Permission.READ, Permission.WRITE)


def test_a_writer_may_alias_but_not_approve(http: httpx.Client, logged: Logged,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    name = _model(http)
    _version(http, name, logged.run_id)
    monkeypatch.setattr(perms, "resolve_principal", lambda scope: _Writer("alice", anonymous=False))
    assert http.put(f"{API}/{name}/aliases/staging", json={"version": 1}).status_code == 200
    for method, path in [("POST", f"{API}/{name}/versions/1/approve"), ("PUT", f"{API}/{name}/protected-aliases/x"),
                         ("DELETE", f"{API}/{name}/protected-aliases/production")]:
        body = assert_error_envelope(http.request(method, path, json={} if method == "POST" else None), 403)
        assert "maintain" in body["message"]
    assert http.get(f"{API}/{name}/versions/1").json()["approval"] is None
    assert _history(http, name)[-1]["user"] == "alice"  # recorded as the principal


# -- the fluent SDK against a real server -------------------------------------------------------
@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, in a background thread."""
    app = create_app(_settings(tmp_path))
    try:
        with uvicorn_thread(app, name="registry-test-server", timeout=6.0) as url:
            yield url
    finally:
        app.state.client.close()


def test_remote_sdk_registers_aliases_and_loads(live_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.tracking import fluent

    monkeypatch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
    monkeypatch.setenv("SHIPYARD_CAPTURE_GIT", "false")
    fluent._reset_for_tests()
    frame = _frame()
    first, second = _fit(frame, 0.05), _fit(frame, 5.0)
    try:
        shipyard.set_tracking_uri(live_server)
        with shipyard.start_run():
            shipyard.log_model(first, "model", input_example=frame.head(3), registered_model_name="remote-churn")
        with shipyard.start_run():
            shipyard.log_model(second, "model", input_example=frame.head(3), registered_model_name="remote-churn")
        shipyard.set_alias("remote-churn", "staging", 1)
        loaded = shipyard.load_model("models:/remote-churn@staging")
        np.testing.assert_allclose(loaded.unwrap().coef_, first.coef_)
        np.testing.assert_array_equal(loaded.predict(frame), first.predict(frame))
        shipyard.set_alias("remote-churn", "staging", 2)
        np.testing.assert_allclose(shipyard.load_model("models:/remote-churn@staging").unwrap().coef_,
                                   second.coef_)
        with httpx.Client(base_url=live_server) as http:
            moves = [(e["alias"], e["version"], e["previous_version"])
                     for e in http.get(f"{API}/remote-churn/history").json()["events"] if e["kind"] == "alias_set"]
        assert moves == [("staging", 1, None), ("staging", 2, 1)]
    finally:
        fluent._reset_for_tests()


# -- evaluation, gates and cards through the server ----------------------------------------------
def test_evaluate_promote_and_card_through_the_server(sdk: shipyard.Client, logged: Logged, http: httpx.Client) -> None:
    name = _name()
    version = sdk.register_model(f"runs:/{logged.run_id}/model", name).version
    frame = _frame()
    frame["y"] = (frame["x"] > 0).astype(int)
    result = sdk.evaluate_model(f"models:/{name}/{version}", frame, target="y")
    served = http.get(f"{API}/{name}/versions/{version}").json()
    assert served["tags"]["shipyard.evaluation_run"] == result.run_id
    accuracy = result.metrics["accuracy"]
    failed = sdk.promote_model(name, version, "staging", require=[f"metrics.accuracy > {accuracy}"])
    assert not failed.promoted
    assert sdk.promote_model(name, version, "staging", require=[f"metrics.accuracy >= {accuracy}"]).promoted
    assert http.get(f"{API}/{name}/aliases/staging").json()["version"] == version
    card = sdk.model_card(name, version)
    assert "accuracy" in card
    assert http.get(f"{API}/{name}/versions/{version}").json()["card"] == card
