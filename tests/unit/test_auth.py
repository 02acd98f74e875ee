"""The acting principal: who the SDK and the server record as the user of a change."""

from __future__ import annotations

import getpass

import pytest

from shipyard.auth import ANONYMOUS, Permission, Principal, current_user, local_principal
from shipyard.auth.roles import PERMISSION_TABLE, permission_table_markdown
from shipyard.entities.auth import DEFAULT_PROJECT, Role
from shipyard.errors import InvalidInput


def test_current_user_falls_back_to_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> str:
        raise OSError("no user")

    monkeypatch.setattr(getpass, "getuser", broken)
    assert current_user() == "unknown"


def test_the_sdk_acts_as_the_login_of_its_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    assert local_principal() == Principal("alice")


def test_the_sdk_acts_as_the_acting_user_setting_when_it_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.config import Settings

    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    settings = Settings.resolve(env={"SHIPYARD_ACTING_USER": "shipyard:monitor"})
    assert settings.acting_user == "shipyard:monitor"
    assert settings.sources["acting_user"] == "env"
    assert local_principal(settings.acting_user) == Principal("shipyard:monitor")
    assert local_principal(Settings.resolve(env={}).acting_user) == Principal("alice")  # empty: the OS login


def test_a_server_without_authentication_acts_as_the_anonymous_local_principal() -> None:
    assert ANONYMOUS.name == "local"
    assert ANONYMOUS.anonymous


def test_an_unrestricted_principal_holds_every_permission_everywhere() -> None:
    for permission in Permission:
        assert ANONYMOUS.can(permission)
        assert ANONYMOUS.can(permission, "any-project")
    assert ANONYMOUS.visible_projects() is None
    assert ANONYMOUS.role_in("churn") is Role.OWNER


def test_a_member_holds_what_its_role_grants_in_its_projects_only() -> None:
    bob = Principal.signed_in("bob", grants=[("churn", Role.VIEWER), ("fraud", Role.MAINTAINER)])
    assert bob.can(Permission.READ, "churn")
    assert not bob.can(Permission.WRITE, "churn")
    assert bob.can(Permission.MAINTAIN, "fraud")
    assert not bob.can(Permission.DELETE, "fraud")
    assert bob.role_in("other") is None
    assert not bob.can(Permission.READ, "other")
    assert bob.visible_projects(Permission.READ) == ("churn", "fraud")
    assert bob.visible_projects(Permission.MAINTAIN) == ("fraud",)
    assert bob.can(Permission.WRITE)  # somewhere: the route may run; the object's project decides
    assert not bob.can(Permission.DELETE)
    assert not bob.can(Permission.ADMIN)
    assert bob.can(Permission.SIGNED_IN)
    assert bob.project == DEFAULT_PROJECT


def test_a_project_token_caps_the_users_role_to_its_project_and_role() -> None:
    admin_ci = Principal.signed_in("root", admin=True, scope=("churn", Role.EDITOR))
    assert admin_ci.role_in("churn") is Role.EDITOR
    assert admin_ci.role_in("fraud") is None
    assert admin_ci.visible_projects() == ("churn",)
    assert not admin_ci.can(Permission.ADMIN)  # a scoped token never administers the server
    assert admin_ci.project == "churn"  # new objects go to the token's project
    viewer_token = Principal.signed_in("bob", grants=[("churn", Role.VIEWER)], scope=("churn", Role.OWNER))
    assert viewer_token.role_in("churn") is Role.VIEWER  # the scope cannot raise a role


def test_anonymous_on_a_server_with_authentication_may_only_reach_public_routes() -> None:
    nobody = Principal("anonymous", grants=())
    assert nobody.can(Permission.PUBLIC)
    assert not any(nobody.can(p) for p in Permission if p is not Permission.PUBLIC)


def test_the_role_table_covers_every_permission_and_roles_parse_by_name() -> None:
    assert set(PERMISSION_TABLE) == set(Permission)
    assert Role.parse(" Editor ") is Role.EDITOR
    with pytest.raises(InvalidInput, match="viewer, editor, maintainer, owner"):
        Role.parse("god")
    assert "| `delete` | owner |" in permission_table_markdown()
