"""``shipyard users|tokens|projects|audit|login|logout|whoami``: on the database itself (as the
operator) and through a server with --auth, end to end."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import shipyard
from shipyard.cli import app
from shipyard.clock import now_ms
from shipyard.entities.auth import AuditEvent
from tests.support import uvicorn_thread, wait_for

PASSWORD = "correct horse battery"
CODE = "BOOT-2468-CODE"


@dataclass
class Cli:
    tracking_uri: str
    config_home: Path

    def __call__(self, *args: str, input: str | None = None, uri: str | None = None) -> Result:
        return CliRunner().invoke(app, ["--tracking-uri", uri or self.tracking_uri, *args], input=input,
                                  env={"COLUMNS": "200", "XDG_CONFIG_HOME": str(self.config_home),
                                       "SHIPYARD_TRACKING_TOKEN": None, "SHIPYARD_PROJECT": None})

    def ok(self, *args: str, input: str | None = None, uri: str | None = None) -> Result:
        result = self(*args, input=input, uri=uri)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def json(self, *args: str, uri: str | None = None) -> object:
        return json.loads(self.ok(*args, "--json", uri=uri).stdout)

    def refused(self, exit_code: int, *args: str, input: str | None = None, uri: str | None = None) -> str:
        result = self(*args, input=input, uri=uri)
        assert result.exit_code == exit_code, (result.stdout, result.stderr)
        assert result.stderr.startswith("Error: "), result.stderr
        assert "Traceback" not in result.stderr
        return result.stderr


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(f"sqlite:///{tmp_path / 'shipyard.db'}", tmp_path / "config")


# -- on the database itself ---------------------------------------------------------------------
def test_users_projects_and_tokens_on_the_database(cli: Cli) -> None:
    cli.ok("users", "create", "alice", "--email", "alice@example.com", "--password-stdin", input=PASSWORD + "\n")
    cli.ok("users", "create", "ci-bot", "--service")
    cli.ok("users", "create", "root", "--admin", "--password-stdin", input=PASSWORD + "\n")
    assert "too short" in cli.refused(2, "users", "create", "bob", "--password-stdin", input="short\n")
    assert "already" in cli.refused(4, "users", "create", "alice", "--password-stdin", input=PASSWORD + "\n")
    users = {u["name"]: u for u in cli.json("users", "list")}
    assert set(users) == {"alice", "ci-bot", "root"}
    assert users["ci-bot"]["service"]
    assert users["root"]["admin"]
    assert not users["alice"]["admin"]
    assert not any("hash" in key or "password" in key for u in users.values() for key in u)

    cli.ok("projects", "create", "churn", "--description", "Churn models")
    assert [p["name"] for p in cli.json("projects", "list")] == ["churn", "default"]
    cli.ok("projects", "grant", "churn", "alice", "editor")
    assert "viewer, editor, maintainer, owner" in cli.refused(2, "projects", "grant", "churn", "alice", "boss")
    assert cli.json("projects", "members", "churn") == [{"project": "churn", "user": "alice", "role": "editor"}]

    assert "--user" in cli.refused(2, "tokens", "create", "--name", "mine")
    assert "grant one first" in cli.refused(2, "tokens", "create", "--name", "ci", "--user", "ci-bot",
                                            "--project", "churn", "--role", "editor")
    cli.ok("projects", "grant", "churn", "ci-bot", "editor")
    made = cli.ok("tokens", "create", "--name", "ci", "--user", "ci-bot", "--project", "churn", "--role", "viewer",
                  "--expires", "30d")
    secret = next(word for word in made.stdout.split() if word.startswith("shy_"))
    assert "shown only this once" in made.stdout.replace("\n", " ")
    listing = cli.ok("tokens", "list")
    assert secret not in listing.stdout
    assert "ci-bot" in listing.stdout
    assert "churn (viewer)" in listing.stdout
    [token] = cli.json("tokens", "list")
    assert token["user"] == "ci-bot"
    assert token["role"] == "viewer"
    assert token["expires"]
    assert not token["revoked"]
    assert secret not in json.dumps(token)
    cli.ok("tokens", "revoke", token["token_id"])
    assert cli.json("tokens", "list", "--user", "ci-bot")[0]["revoked"] is True
    assert "--expires" in cli.refused(2, "tokens", "create", "--name", "x", "--user", "alice", "--expires", "soon")

    cli.ok("users", "set-admin", "alice")
    assert {u["name"]: u["admin"] for u in cli.json("users", "list")}["alice"] is True
    cli.ok("users", "set-admin", "alice", "--revoke")
    assert "give --issuer" in cli.refused(2, "users", "link", "alice", "--subject", "s-1")
    cli.ok("users", "link", "alice", "--subject", "s-1", "--issuer", "https://id.example.com")
    cli.ok("users", "disable", "alice")
    assert {u["name"]: u["disabled"] for u in cli.json("users", "list")}["alice"] is True
    cli.ok("users", "enable", "alice")
    cli.ok("users", "set-password", "alice", "--password-stdin", input="another long passphrase\n")
    cli.ok("projects", "revoke", "churn", "alice")
    assert [m["user"] for m in cli.json("projects", "members", "churn")] == ["ci-bot"]
    assert "not a member" in cli.refused(3, "projects", "revoke", "churn", "alice")

    me = cli.json("whoami")
    assert me["unrestricted"] is True
    assert me["server"] is None


def test_audit_list_reads_and_exports_the_log(cli: Cli) -> None:
    client = shipyard.Client(tracking_uri=cli.tracking_uri)
    try:
        now = now_ms()
        client.store.auth.record_audit([
            AuditEvent(time=now - 3 * 86_400_000, principal="alice", action="delete_run", method="DELETE",
                       path="/api/v1/runs/1", status=200, project="churn", object="run:1"),
            AuditEvent(time=now - 60_000, principal="alice", action="create_run", method="POST", path="/api/v1/runs",
                       status=200, project="churn", object="run:2", address="10.0.0.7", request_id="r-2"),
            AuditEvent(time=now - 30_000, principal="bob", action="create_run", method="POST", path="/api/v1/runs",
                       status=403, project="fraud", detail="bob lacks the write permission"),
        ])
    finally:
        client.close()
    lines = cli.ok("audit", "list", "--project", "churn", "--since", "24h", "--json").stdout.splitlines()
    assert [json.loads(line)["object"] for line in lines] == ["run:2"]
    assert json.loads(lines[0])["request_id"] == "r-2"
    everything = cli.ok("audit", "list", "--json").stdout.splitlines()
    assert [json.loads(line)["principal"] for line in everything] == ["bob", "alice", "alice"]  # newest first
    table = cli.ok("audit", "list", "--user", "bob").stdout
    assert "bob lacks the write permission" in table
    assert "alice" not in table
    assert [json.loads(x)["action"] for x in cli.ok("audit", "list", "--action", "delete_run", "--json")
            .stdout.splitlines()] == ["delete_run"]
    assert "--since" in cli.refused(2, "audit", "list", "--since", "yesterday-ish")


# -- through a server with --auth ---------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    from shipyard.config import Settings
    from shipyard.server import create_app
    from shipyard.server.authentication import bootstrap_code_hash

    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{tmp_path / 'server.db'}",
                                artifact_uri=str(tmp_path / "server-artifacts"), server_auth=True,
                                server_run_monitors=False)
    app = create_app(settings, bootstrap_hash=bootstrap_code_hash(CODE))
    try:
        with uvicorn_thread(app) as url:
            yield url
    finally:
        app.state.client.close()


def test_login_keeps_a_token_never_the_password_and_the_sdk_uses_it(
        cli: Cli, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "wrong bootstrap code" in cli.refused(5, "users", "bootstrap", server, "--code", "nope", "--name", "admin",
                                                 "--password-stdin", input=PASSWORD + "\n")
    cli.ok("users", "bootstrap", server, "--code", CODE, "--name", "admin", "--password-stdin",
           input=PASSWORD + "\n")

    wrong = cli.refused(5, "login", server, "-u", "admin", "--password-stdin", input="not the password\n")
    assert "wrong user name or password" in wrong
    assert "shipyard login" not in wrong
    signed = cli.ok("login", server, "-u", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert "Signed in to" in signed.stdout

    path = cli.config_home / "shipyard" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text
    entry = json.loads(text)["servers"][server]
    assert entry["user"] == "admin"
    assert entry["token"].startswith("shy_")
    assert entry["expires"]

    me = cli.json("whoami", uri=server)
    assert me["name"] == "admin"
    assert me["admin"] is True
    assert me["token_id"] == entry["token_id"]
    cli.ok("users", "create", "alice", "--password-stdin", input=PASSWORD + "\n", uri=server)
    cli.ok("projects", "create", "churn", uri=server)
    cli.ok("projects", "grant", "churn", "alice", "viewer", uri=server)
    assert cli.json("projects", "members", "churn", uri=server) == [
        {"project": "churn", "user": "alice", "role": "viewer"}]
    assert entry["token_id"] in [t["token_id"] for t in cli.json("tokens", "list", uri=server)]

    # An existing user made an admin and back, and linked to a single sign-on identity, over the API.
    cli.ok("users", "set-admin", "alice", uri=server)
    assert {u["name"]: u["admin"] for u in cli.json("users", "list", uri=server)}["alice"] is True
    cli.ok("users", "set-admin", "alice", "--revoke", uri=server)
    assert {u["name"]: u["admin"] for u in cli.json("users", "list", uri=server)}["alice"] is False
    assert "only enabled admin" in cli.refused(4, "users", "set-admin", "admin", "--revoke", uri=server)
    assert "no single sign-on provider" in cli.refused(2, "users", "link", "alice", "--subject", "s-1", uri=server)
    issuer = "https://id.example.com"
    cli.ok("users", "link", "alice", "--subject", "s-1", "--issuer", issuer, uri=server)
    assert "linked to a user already" in cli.refused(4, "users", "link", "admin", "--subject", "s-1", "--issuer",
                                                     issuer, uri=server)
    cli.ok("users", "unlink", "alice", "--subject", "s-1", "--issuer", issuer, uri=server)
    assert "is not linked" in cli.refused(3, "users", "unlink", "alice", "--subject", "s-1", "--issuer", issuer,
                                          uri=server)

    # The SDK finds the token `shipyard login` kept for its tracking URI.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(cli.config_home))
    monkeypatch.delenv("SHIPYARD_TRACKING_TOKEN", raising=False)
    sdk = shipyard.Client(tracking_uri=server)
    try:
        sdk.create_experiment("signed-in")
        sdk.registry.create_registered_model("churn-model")
        assert {e.user for e in sdk.registry.model_history("churn-model")} == {"admin"}
    finally:
        sdk.close()

    def audited() -> list[dict[str, object]]:
        lines = cli.ok("audit", "list", "--user", "admin", "--json", uri=server).stdout.splitlines()
        return [json.loads(line) for line in lines]

    events = wait_for(lambda: [e for e in audited() if e["action"] == "create_user"] and audited(),
                      what="the audit log to record create_user")
    assert {"create_user", "create_project", "create_token", "set_user_admin", "link_user_identity",
            "unlink_user_identity"} <= {e["action"] for e in events}

    cli.ok("logout", server)
    assert server not in json.loads(path.read_text())["servers"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    refused = cli.refused(5, "whoami", uri=server)
    assert f"shipyard login {server}" in refused
    assert "Not signed in" in cli.ok("logout", server).stdout

    # The revoked token is refused even when sent explicitly.
    result = CliRunner().invoke(app, ["--tracking-uri", server, "whoami"],
                                env={"XDG_CONFIG_HOME": str(cli.config_home),
                                     "SHIPYARD_TRACKING_TOKEN": entry["token"]})
    assert result.exit_code == 5
    assert "revoked" in result.stderr


def test_login_needs_a_server_url(cli: Cli) -> None:
    assert "not a server URL" in cli.refused(2, "login", "-u", "x", "--password-stdin", input="y\n")


def test_config_show_never_prints_the_token(cli: Cli) -> None:
    secret = "shy_0123456789abcdef_" + "k" * 43
    result = CliRunner().invoke(app, ["config", "show", "--json"], env={"SHIPYARD_TRACKING_TOKEN": secret})
    assert result.exit_code == 0
    assert secret not in result.stdout
    row = next(r for r in json.loads(result.stdout) if r["name"] == "tracking_token")
    assert (row["value"], row["source"]) == ("(set, hidden)", "env")
