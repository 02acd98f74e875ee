"""The acting principal: who the SDK and the server record as the user of a change."""

from __future__ import annotations

import getpass

import pytest

from shipyard.auth import ANONYMOUS, Principal, current_user, local_principal


def test_current_user_falls_back_to_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> str:
        raise OSError("no user")

    monkeypatch.setattr(getpass, "getuser", broken)
    assert current_user() == "unknown"


def test_the_sdk_acts_as_the_login_of_its_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    assert local_principal() == Principal("alice")


def test_a_server_without_authentication_acts_as_the_anonymous_local_principal() -> None:
    assert ANONYMOUS.name == "local"
    assert ANONYMOUS.anonymous
