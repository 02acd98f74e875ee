"""Findings of a security review of access control (#16), each kept as a regression test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.auth_world import World, build_world, ok


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("auth-review"))
    yield built
    built.server.close()


def test_a_logged_model_cannot_borrow_a_hidden_projects_run(world: World) -> None:
    """A logged model's files are its run's: one made in beta over alpha's run would read alpha's files."""
    beta_exp, alpha_run = world.ids["beta_experiment"], world.ids["run"]
    model_id = "m-" + "b2" * 16
    made = world.request("other", "POST", "/api/v1/logged-models", json={
        "model_id": model_id, "experiment_id": beta_exp, "name": "borrowed", "run_id": alpha_run,
        "artifact_path": ""})
    assert made.status_code == 404, made.text
    assert alpha_run in made.json()["message"]
    leaked = world.request("other", "GET", f"/api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
                           params={"artifact_file_path": "notes.txt"})
    assert b"alpha secret notes" not in leaked.content
    proxied = world.request("other", "GET",
                            f"/api/2.0/mlflow-artifacts/artifacts/{beta_exp}/models/{model_id}/artifacts/notes.txt")
    assert b"alpha secret notes" not in proxied.content


def test_a_session_cookie_changes_nothing_through_the_api(world: World) -> None:
    """The cookie rides along on any request a browser makes to the server, and only the UI's forms
    check a CSRF token: a bodiless cross-origin POST (which needs no CORS preflight) must not act as
    the signed-in admin."""
    operator = world.operator()
    operator.create_user("cathy", password="another long passphrase 8")
    _, session = operator.create_token("web session", user="root", kind="session")
    cookie = {"cookie": f"shipyard_session={session}"}
    refused = world.http.post("/api/v1/users/cathy/disable", headers=cookie)
    assert refused.status_code == 401, refused.text
    assert not operator.get_user("cathy").disabled
    # Reading with the cookie still works (the UI's own charts fetch JSON with it).
    assert world.http.get("/api/v1/auth/whoami", headers=cookie).json()["principal"]["name"] == "root"


def test_making_a_token_does_not_tell_which_projects_exist(world: World) -> None:
    secret = world.operator().create_project("gamma-hidden")
    assert secret.name == "gamma-hidden"
    hidden = world.request("other", "POST", "/api/v1/auth/tokens",
                           json={"name": "probe", "project": "gamma-hidden", "role": "viewer"})
    absent = world.request("other", "POST", "/api/v1/auth/tokens",
                           json={"name": "probe", "project": "gamma-absent", "role": "viewer"})
    assert (hidden.status_code, hidden.text.replace("hidden", "X")) == \
        (absent.status_code, absent.text.replace("absent", "X"))


def test_a_token_cannot_outlive_the_token_that_made_it(world: World) -> None:
    """An expiring token (a CI token, a 12-hour web session) must not mint one that never expires."""
    _, short = world.operator().create_token("short", user="eddie", expires_in_ms=3_600_000)
    made = world.http.post("/api/v1/auth/tokens", headers={"authorization": f"Bearer {short}"},
                           json={"name": "forever"})
    assert made.status_code == 201, made.text
    parent = ok(world.http.get("/api/v1/auth/whoami", headers={"authorization": f"Bearer {short}"}))
    tokens = {t["token_id"]: t for t in ok(world.request("editor", "GET", "/api/v1/auth/tokens"))["tokens"]}
    child = made.json()["token"]
    assert child["expires"] is not None
    assert child["expires"] <= tokens[parent["principal"]["token_id"]]["expires"]
