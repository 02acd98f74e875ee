"""The single sign-on settings: what turns it on, what a wrong value says, and that a server
refuses to start with it but without --auth (the sign-in flow itself: tests/integration/test_oidc_sign_in.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.config import Settings
from shipyard.entities.auth import Role
from shipyard.errors import InvalidInput
from shipyard.server import create_app
from shipyard.server.oidc import Identity, OidcConfig

ISSUER = "https://login.example.com/realms/ml"


def _config(**settings: Any) -> OidcConfig | None:
    values = {"server_oidc_issuer": ISSUER, "server_oidc_client_id": "shipyard", **settings}
    return OidcConfig.from_settings(Settings.resolve(env={}, **values))


def test_no_issuer_means_single_sign_on_is_off() -> None:
    assert OidcConfig.from_settings(Settings.resolve(env={})) is None
    assert _config(server_oidc_issuer="  ") is None


def test_defaults_and_values_from_the_environment() -> None:
    config = OidcConfig.from_settings(Settings.resolve(env={
        "SHIPYARD_SERVER_OIDC_ISSUER": ISSUER, "SHIPYARD_SERVER_OIDC_CLIENT_ID": "shipyard",
        "SHIPYARD_SERVER_OIDC_CLIENT_SECRET": "s3cret", "SHIPYARD_SERVER_OIDC_GRANTS": "default:viewer, churn:editor",
        "SHIPYARD_SERVER_OIDC_SCOPES": "email profile groups"}))
    assert config is not None
    assert (config.provider_name, config.username_claim, config.redirect_uri) == ("login.example.com",
                                                                                  "preferred_username", "")
    assert config.scopes == "openid email profile groups"  # without openid no ID token comes back
    assert config.grants == (("default", Role.VIEWER), ("churn", Role.EDITOR))
    assert "s3cret" not in repr(config)
    assert "s3cret" not in repr(Settings.resolve(env={"SHIPYARD_SERVER_OIDC_CLIENT_SECRET": "s3cret"}))


@pytest.mark.parametrize(("settings", "message"), [
    ({"server_oidc_issuer": "http://login.example.com"}, "SHIPYARD_SERVER_OIDC_ISSUER 'http://login.example.com' "
                                                         "must use https"),
    ({"server_oidc_issuer": "login.example.com"}, "is not an http(s) URL"),
    ({"server_oidc_client_id": ""}, "SHIPYARD_SERVER_OIDC_CLIENT_ID is empty"),
    ({"server_oidc_username_claim": " "}, "SHIPYARD_SERVER_OIDC_USERNAME_CLAIM is empty"),
    ({"server_oidc_redirect_uri": "http://shipyard.example.com/ui/oidc/callback"}, "must use https"),
    ({"server_oidc_grants": "default"}, "item 'default' is not PROJECT:ROLE"),
    ({"server_oidc_grants": "default:boss"}, "role 'boss' is not one of viewer"),
], ids=["http issuer", "no scheme", "no client id", "no claim", "http redirect", "no role", "unknown role"])
def test_a_wrong_setting_names_its_variable(settings: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _config(**settings)
    assert message in refused.value.message


@pytest.mark.parametrize("issuer", ["http://localhost:8080/realms/dev", "http://127.0.0.1:9000", "http://[::1]:9000"])
def test_plain_http_is_accepted_for_a_provider_on_this_machine(issuer: str) -> None:
    config = _config(server_oidc_issuer=issuer)
    assert config is not None
    assert config.issuer == issuer


def test_a_server_without_auth_refuses_single_sign_on(tmp_path: Path) -> None:
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{tmp_path / 'x.db'}", artifact_uri=str(tmp_path),
                                server_oidc_issuer=ISSUER, server_oidc_client_id="shipyard")
    with pytest.raises(InvalidInput, match="start the server with --auth"):
        create_app(settings)
    assert not (tmp_path / "x.db").exists()  # refused before the store was opened


def test_user_names_are_tried_in_order_and_an_unverified_email_is_left_out() -> None:
    identity = Identity(issuer=ISSUER, subject="s-1", next="/ui/experiments",
                        claims={"sub": "s-1", "preferred_username": "ada", "email": "ada@example.com",
                                "email_verified": False, "upn": "ada@corp.example"})
    assert identity.names("preferred_username") == ["ada", "ada@example.com", "s-1"]
    assert identity.names("upn") == ["ada@corp.example", "ada@example.com", "s-1"]
    assert identity.names("missing") == ["ada@example.com", "s-1"]
    assert identity.email == ""
    assert Identity(ISSUER, "s-1", {"email": "ada@example.com"}, "/").email == "ada@example.com"


def test_config_show_never_prints_the_client_secret() -> None:
    result = CliRunner().invoke(app, ["config", "show", "--json"], env={"SHIPYARD_SERVER_OIDC_CLIENT_SECRET": "s3cret"})
    assert result.exit_code == 0
    assert "s3cret" not in result.stdout
    row = next(r for r in json.loads(result.stdout) if r["name"] == "server_oidc_client_secret")
    assert (row["value"], row["source"]) == ("(set, hidden)", "env")


def test_shipyard_server_stops_at_a_wrong_setting_before_it_starts(tmp_path: Path) -> None:
    env = {"SHIPYARD_TRACKING_URI": f"sqlite:///{tmp_path / 'x.db'}", "SHIPYARD_SERVER_OIDC_ISSUER": ISSUER}
    result = CliRunner().invoke(app, ["server", "--auth", "--port", "1"], env=env)
    assert result.exit_code == 2, result.output
    assert "SHIPYARD_SERVER_OIDC_CLIENT_ID is empty" in result.output
    assert not (tmp_path / "x.db").exists()
