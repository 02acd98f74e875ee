"""The access-control rules of AuthService on a real SQL auth store (SQLite)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher, Type

import shipyard.auth.passwords as passwords_module
import shipyard.auth.service as service_module
from shipyard.auth.principal import Principal
from shipyard.auth.service import AuthService
from shipyard.entities.auth import DEFAULT_PROJECT, AuditEvent, AuditQuery, Role
from shipyard.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
    Unauthenticated,
)
from shipyard.store.protocol import AuthStore
from shipyard.store.sql import SqlStore

PASSWORD = "tulip-granite-orbit"
OPERATOR = Principal("operator", anonymous=False, admin=True, grants=None)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    # Still argon2id, with the least work: the production parameters cost ~0.1-0.7 s a hash, and these
    # tests hash and verify dozens of times (test_auth_passwords checks the real parameters).
    monkeypatch.setattr(passwords_module, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1,
                                                                    type=Type.ID))


@pytest.fixture
def store(tmp_path) -> Iterator[AuthStore]:
    sql = SqlStore(f"sqlite:///{tmp_path / 'auth.db'}")
    yield sql.auth
    sql.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ops(store: AuthStore, clock: Clock) -> AuthService:
    """The unrestricted operator (the CLI on the database itself)."""
    return AuthService(store, OPERATOR, clock=clock)


def as_user(ops: AuthService, name: str) -> AuthService:
    principal = ops.principal_for(ops.store.get_user(name))
    return AuthService(ops.store, principal, clock=ops.clock)


def as_token(ops: AuthService, secret: str) -> AuthService:
    return AuthService(ops.store, ops.authenticate_token(secret), clock=ops.clock)


# -- users and passwords ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("password", "message"), [("short-pass", "too short"),
                                                   ("Password12345", "common passwords")],
                         ids=["short", "common"])
def test_the_password_policy_applies_to_new_users(ops: AuthService, password: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ops.create_user("ana", password=password)
    with pytest.raises(NotFound):
        ops.store.get_user("ana")


def test_a_new_users_password_is_stored_as_argon2id_and_signs_in(ops: AuthService) -> None:
    user = ops.create_user("ana", email="ana@example.com", password=PASSWORD)
    assert (user.name, user.email, user.admin, user.service) == ("ana", "ana@example.com", False, False)
    stored = ops.store.password_hash("ana")
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    principal = ops.authenticate_password("ana", PASSWORD, address="10.0.0.1")
    assert (principal.name, principal.anonymous, principal.admin, principal.grants) == ("ana", False, False, ())


@pytest.mark.parametrize("name", ["", "-ana", "ana:smith", "a/b", "ana smith", "x" * 65])
def test_user_names_follow_the_rules(ops: AuthService, name: str) -> None:
    with pytest.raises(InvalidInput, match="user name"):
        ops.create_user(name, password=PASSWORD)


def test_service_accounts_have_no_password(ops: AuthService) -> None:
    with pytest.raises(InvalidInput, match="service account"):
        ops.create_user("ci", service=True, password=PASSWORD)
    ops.create_user("ci", service=True)
    with pytest.raises(InvalidInput, match="service account"):
        ops.set_password("ci", PASSWORD)
    with pytest.raises(Unauthenticated, match="wrong user name or password"):
        ops.authenticate_password("ci", PASSWORD)
    with pytest.raises(AlreadyExists):
        ops.create_user("ci", service=True)


def test_a_second_sign_in_does_not_verify_the_password_again(ops: AuthService,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ops.create_user("ana", password=PASSWORD)
    calls: list[str] = []
    real = service_module.verify_password
    monkeypatch.setattr(service_module, "verify_password", lambda h, p: calls.append(p) or real(h, p))
    ops.authenticate_password("ana", PASSWORD)
    ops.authenticate_password("ana", PASSWORD)
    ops.authenticate_password("ana", PASSWORD)
    assert calls == [PASSWORD]
    with pytest.raises(Unauthenticated):
        ops.authenticate_password("ana", PASSWORD + "!")  # a wrong one is verified, never cached
    assert len(calls) == 2
    ops.set_password("ana", "a-brand-new-passphrase")  # a new hash: the old entry matches nothing
    with pytest.raises(Unauthenticated):
        ops.authenticate_password("ana", PASSWORD)
    ops.authenticate_password("ana", "a-brand-new-passphrase")
    assert len(calls) == 4


def test_a_hash_made_with_weaker_parameters_is_upgraded_at_sign_in(ops: AuthService,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ops.create_user("ana", password=PASSWORD)
    stronger = PasswordHasher(time_cost=2, memory_cost=8, parallelism=1, type=Type.ID)
    monkeypatch.setattr(passwords_module, "_HASHER", stronger)
    ops.authenticate_password("ana", PASSWORD)
    upgraded = ops.store.password_hash("ana")
    assert upgraded is not None
    assert ",t=2," in upgraded
    ops.authenticate_password("ana", PASSWORD)
    assert ops.store.password_hash("ana") == upgraded


def test_unknown_user_and_wrong_password_answer_the_same(ops: AuthService) -> None:
    ops.create_user("ana", password=PASSWORD)
    with pytest.raises(Unauthenticated) as wrong:
        ops.authenticate_password("ana", "not-her-password")
    with pytest.raises(Unauthenticated) as unknown:
        ops.authenticate_password("nobody", "not-her-password")
    assert wrong.value.to_dict() == unknown.value.to_dict()


def test_five_failures_lock_sign_in_until_the_window_passes(ops: AuthService, clock: Clock) -> None:
    ops.create_user("ana", password=PASSWORD)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            ops.authenticate_password("ana", "guess-number-something", address="10.0.0.66")
    with pytest.raises(TooManyAttempts) as locked:
        ops.authenticate_password("ana", PASSWORD, address="10.0.0.1")  # even the right one, from elsewhere
    assert locked.value.details["retry_after"] == 300
    assert locked.value.http_status == 429
    with pytest.raises(TooManyAttempts):
        ops.authenticate_password("nobody", PASSWORD, address="10.0.0.66")  # the address is locked too
    clock.now += 5 * 60_000
    assert ops.authenticate_password("ana", PASSWORD, address="10.0.0.66").name == "ana"


def test_a_success_resets_the_count(ops: AuthService) -> None:
    ops.create_user("ana", password=PASSWORD)
    for _ in range(3):
        for _ in range(4):
            with pytest.raises(Unauthenticated):
                ops.authenticate_password("ana", "guess-number-something", address="10.0.0.1")
        ops.authenticate_password("ana", PASSWORD, address="10.0.0.1")


def test_services_over_one_store_share_the_throttle(store: AuthStore, clock: Clock) -> None:
    AuthService(store, OPERATOR).create_user("ana", password=PASSWORD)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            AuthService(store, OPERATOR, clock=clock).authenticate_password("ana", "guess-number-something")
    with pytest.raises(TooManyAttempts):
        AuthService(store, OPERATOR, clock=clock).authenticate_password("ana", PASSWORD)


def test_a_disabled_user_is_refused_by_password_and_by_its_tokens(ops: AuthService) -> None:
    ops.create_user("ana", password=PASSWORD)
    ops.create_user("root", password=PASSWORD + "-root", admin=True)
    _, secret = ops.create_token("laptop", user="ana")
    ops.authenticate_token(secret)
    assert ops.disable_user("ana").disabled
    with pytest.raises(Unauthenticated, match="'ana' is disabled"):
        ops.authenticate_password("ana", PASSWORD)
    with pytest.raises(Unauthenticated, match="wrong user name or password"):
        ops.authenticate_password("ana", "not-her-password")  # said only to the right password
    with pytest.raises(Unauthenticated, match="'ana' is disabled"):
        ops.authenticate_token(secret)
    ops.enable_user("ana")
    assert ops.authenticate_token(secret).name == "ana"


def test_the_last_enabled_admin_cannot_be_disabled(ops: AuthService) -> None:
    ops.create_user("root", password=PASSWORD, admin=True)
    with pytest.raises(Conflict, match="only enabled admin"):
        ops.disable_user("root")
    ops.create_user("root2", password=PASSWORD + "-2", admin=True)
    ops.disable_user("root")


def test_an_existing_user_is_made_an_admin_and_back(ops: AuthService) -> None:
    ops.create_user("root", password=PASSWORD, admin=True)
    ops.create_user("ana", password=PASSWORD)
    ops.create_user("ci", service=True)
    ana = as_user(ops, "ana")
    with pytest.raises(PermissionDenied, match="needs a server admin"):
        ana.set_admin("ana")
    assert ops.set_admin("ana").admin
    assert as_user(ops, "ana").list_users()  # an admin's principal now
    with pytest.raises(InvalidInput, match="service account"):
        ops.set_admin("ci")
    assert not ops.set_admin("root", False).admin
    with pytest.raises(Conflict, match="only enabled admin"):
        ops.set_admin("ana", False)
    assert ops.get_user("ana").admin
    with pytest.raises(NotFound):
        ops.set_admin("nobody")


def test_a_password_account_is_linked_to_a_sign_on_identity(ops: AuthService) -> None:
    issuer = "https://id.example.com"
    ops.create_user("ana", password=PASSWORD)
    ops.create_user("bob", password=PASSWORD)
    with pytest.raises(Conflict, match="belongs to another Shipyard user"):  # unlinked: her name is taken
        ops.authenticate_identity(issuer, "sub-ana", names=["ana"])
    with pytest.raises(PermissionDenied, match="needs a server admin"):
        as_user(ops, "ana").link_identity("ana", issuer=issuer, subject="sub-ana")
    ops.link_identity("ana", issuer=issuer, subject="sub-ana")
    assert ops.authenticate_identity(issuer, "sub-ana", names=["whatever-the-claim-says"]).name == "ana"
    assert ops.authenticate_password("ana", PASSWORD).name == "ana"  # the password still works
    with pytest.raises(AlreadyExists, match="linked to a user already"):
        ops.link_identity("bob", issuer=issuer, subject="sub-ana")
    with pytest.raises(InvalidInput, match="is not a URL"):
        ops.link_identity("bob", issuer="id.example.com", subject="sub-bob")
    with pytest.raises(InvalidInput, match="subject is empty"):
        ops.link_identity("bob", issuer=issuer, subject=" ")
    with pytest.raises(NotFound):
        ops.link_identity("nobody", issuer=issuer, subject="sub-nobody")
    with pytest.raises(NotFound, match="'bob' is not linked"):
        ops.unlink_identity("bob", issuer=issuer, subject="sub-ana")
    ops.unlink_identity("ana", issuer=issuer, subject="sub-ana")
    with pytest.raises(Conflict, match="belongs to another Shipyard user"):
        ops.authenticate_identity(issuer, "sub-ana", names=["ana"])
    assert ops.get_user("ana").name == "ana"  # the user stays


def test_a_user_changes_their_own_password_with_the_current_one(ops: AuthService) -> None:
    ops.create_user("ana", password=PASSWORD)
    ops.create_user("bob", password=PASSWORD)
    ana = as_user(ops, "ana")
    with pytest.raises(PermissionDenied, match="current password"):
        ana.set_password("ana", "a-brand-new-passphrase")
    with pytest.raises(PermissionDenied, match="current password"):
        ana.set_password("ana", "a-brand-new-passphrase", current="not-her-password")
    with pytest.raises(PermissionDenied, match="needs a server admin"):
        ana.set_password("bob", "a-brand-new-passphrase", current=PASSWORD)
    with pytest.raises(InvalidInput, match="too short"):
        ana.set_password("ana", "short", current=PASSWORD)
    ana.set_password("ana", "a-brand-new-passphrase", current=PASSWORD)
    assert ops.authenticate_password("ana", "a-brand-new-passphrase").name == "ana"


def test_bootstrap_makes_the_first_admin_only_while_there_are_no_users(store: AuthStore) -> None:
    nobody = AuthService(store, Principal("anonymous", grants=()))
    with pytest.raises(InvalidInput, match="too short"):
        nobody.bootstrap("root", "short")
    root = nobody.bootstrap("root", PASSWORD, email="root@example.com")
    assert root.admin
    assert not root.service
    with pytest.raises(Conflict, match="first admin is made only once"):
        nobody.bootstrap("root2", PASSWORD)
    assert [u.name for u in AuthService(store, OPERATOR).list_users()] == ["root"]


def test_admin_operations_are_refused_to_others(ops: AuthService) -> None:
    ops.create_user("ana", password=PASSWORD)
    ops.create_user("root", password=PASSWORD, admin=True)
    ana = as_user(ops, "ana")
    for attempt in (lambda: ana.create_user("eve", password=PASSWORD), ana.list_users,
                    lambda: ana.disable_user("root"), lambda: ana.enable_user("ana"),
                    lambda: ana.create_project("secret"), lambda: ana.get_user("root"),
                    lambda: ana.list_tokens(all_users=True), lambda: ana.list_tokens("root"),
                    lambda: ana.create_token("for root", user="root"),
                    lambda: ana.audit(AuditQuery())):
        with pytest.raises(PermissionDenied):
            attempt()
    assert ana.get_user("ana").name == "ana"
    root = as_user(ops, "root")
    assert [u.name for u in root.list_users()] == ["ana", "root"]
    assert root.create_user("eve", password=PASSWORD).name == "eve"


def test_without_credentials_nothing_but_bootstrap(store: AuthStore) -> None:
    anonymous = AuthService(store, Principal("anonymous", grants=()))
    with pytest.raises(Unauthenticated, match="sign in first"):
        anonymous.list_projects()
    with pytest.raises(Unauthenticated):
        anonymous.create_token("mine")


# -- tokens -----------------------------------------------------------------------------------------------
def test_a_token_signs_in_as_its_user_and_records_its_use_once_a_minute(ops: AuthService, clock: Clock) -> None:
    ops.create_user("ana", password=PASSWORD)
    ana = as_user(ops, "ana")
    token, secret = ana.create_token("laptop", expires_in_ms=3_600_000)
    assert secret.startswith(f"shy_{token.token_id}_")
    assert (token.user, token.name, token.kind, token.expires) == ("ana", "laptop", "api", clock.now + 3_600_000)
    assert ops.store.get_token(token.token_id)[1] == hashlib.sha256(secret.encode()).hexdigest()
    principal = ops.authenticate_token(secret)
    assert (principal.name, principal.token_id, principal.scope) == ("ana", token.token_id, None)
    assert ops.store.get_token(token.token_id)[0].last_used == clock.now
    first_use = clock.now
    clock.now += 30_000
    ops.authenticate_token(secret)
    assert ops.store.get_token(token.token_id)[0].last_used == first_use
    clock.now += 30_000
    ops.authenticate_token(secret)
    assert ops.store.get_token(token.token_id)[0].last_used == clock.now


def test_refused_tokens_say_why(ops: AuthService, clock: Clock) -> None:
    ops.create_user("ana", password=PASSWORD)
    _short, short_secret = ops.create_token("short", user="ana", expires_in_ms=1000)
    revoked, revoked_secret = ops.create_token("revoked", user="ana")
    _, good = ops.create_token("good", user="ana")
    ops.revoke_token(revoked.token_id)
    clock.now += 1000
    with pytest.raises(Unauthenticated, match="expired at 2023-11-14T22:13:21Z"):
        ops.authenticate_token(short_secret)
    with pytest.raises(Unauthenticated, match="was revoked"):
        ops.authenticate_token(revoked_secret)
    with pytest.raises(Unauthenticated, match="malformed"):
        ops.authenticate_token("not-a-token")
    with pytest.raises(Unauthenticated) as wrong_secret:
        ops.authenticate_token(good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"))
    with pytest.raises(Unauthenticated) as unknown:
        ops.authenticate_token("shy_0123456789abcdef_" + "a" * 43)
    assert wrong_secret.value.to_dict() == unknown.value.to_dict()
    assert "unknown API token" in str(unknown.value)
    assert ops.authenticate_token(good).name == "ana"


def test_token_arguments_are_checked(ops: AuthService) -> None:
    ops.create_user("ana", password=PASSWORD)
    ana = as_user(ops, "ana")
    with pytest.raises(InvalidInput, match="token name"):
        ana.create_token("")
    with pytest.raises(InvalidInput, match="expires_in_ms"):
        ana.create_token("x", expires_in_ms=0)
    with pytest.raises(InvalidInput, match="at most 10 years"):
        ana.create_token("x", expires_in_ms=10**15)
    with pytest.raises(InvalidInput, match="kind"):
        ana.create_token("x", kind="root")
    with pytest.raises(InvalidInput, match="give the project too"):
        ana.create_token("x", role="viewer")
    with pytest.raises(InvalidInput, match="role 'boss'"):
        ana.create_token("x", project=DEFAULT_PROJECT, role="boss")
    with pytest.raises(NotFound, match="project 'nope'"):
        ana.create_token("x", project="nope")
    with pytest.raises(NotFound, match="project 'default'"):  # one without a role: as an absent one
        ana.create_token("x", project=DEFAULT_PROJECT)
    with pytest.raises(InvalidInput, match="no role in project 'default'"):  # an admin is told why
        ops.create_token("x", user="ana", project=DEFAULT_PROJECT)


def test_a_scoped_token_caps_the_role_to_one_project(ops: AuthService) -> None:
    ops.create_user("ana", password=PASSWORD)
    ops.create_user("root", password=PASSWORD, admin=True)
    ops.create_project("churn")
    ops.grant("churn", "ana", Role.EDITOR)
    ops.grant(DEFAULT_PROJECT, "ana", "owner")
    _, viewer = ops.create_token("ci", user="ana", project="churn", role="viewer")
    _, unlimited_role = ops.create_token("ci2", user="ana", project="churn")
    _, admin_scoped = ops.create_token("root ci", user="root", project="churn", role=Role.MAINTAINER)
    principal = ops.authenticate_token(viewer)
    assert principal.scope == ("churn", Role.VIEWER)
    assert principal.project == "churn"
    assert principal.role_in("churn") is Role.VIEWER
    assert principal.role_in(DEFAULT_PROJECT) is None  # she owns it, but not with this token
    assert ops.authenticate_token(unlimited_role).role_in("churn") is Role.EDITOR  # her own role caps it
    root = ops.authenticate_token(admin_scoped)
    assert root.role_in("churn") is Role.MAINTAINER
    assert root.role_in(DEFAULT_PROJECT) is None
    with pytest.raises(PermissionDenied, match="project-scoped token never administers"):
        AuthService(ops.store, root).list_users()


def test_tokens_made_with_a_scoped_token_stay_in_its_scope(ops: AuthService) -> None:
    ops.create_user("ana", password=PASSWORD)
    ops.create_project("churn")
    ops.grant("churn", "ana", Role.EDITOR)
    laptop, _ = ops.create_token("laptop", user="ana")
    _, viewer = ops.create_token("ci", user="ana", project="churn", role="viewer")
    scoped = as_token(ops, viewer)
    token, _ = scoped.create_token("derived")
    assert (token.project, token.role) == ("churn", Role.VIEWER)
    with pytest.raises(PermissionDenied, match="limited to project 'churn'"):
        scoped.create_token("wider", project="churn", role="editor")
    with pytest.raises(PermissionDenied, match="limited to project 'churn'"):
        scoped.create_token("elsewhere", project=DEFAULT_PROJECT)
    # nor does it see or revoke the user's other tokens
    assert {t.name for t in scoped.list_tokens()} == {"ci", "derived"}
    with pytest.raises(NotFound):
        scoped.revoke_token(laptop.token_id)
    assert scoped.revoke_token(token.token_id).revoked


def test_tokens_are_listed_and_revoked_by_their_owner_or_an_admin(ops: AuthService) -> None:
    ops.create_user("ana", password=PASSWORD)
    ops.create_user("bob", password=PASSWORD)
    ops.create_user("ci", service=True)
    ana, bob = as_user(ops, "ana"), as_user(ops, "bob")
    first, _ = ana.create_token("one")
    second, _ = ana.create_token("two", kind="session")
    service_token, service_secret = ops.create_token("nightly", user="ci")
    assert ops.authenticate_token(service_secret).name == "ci"
    assert [t.name for t in ana.list_tokens()] == ["two", "one"]
    assert [t.name for t in ana.list_tokens(kind="session")] == ["two"]
    assert {t.token_id for t in ops.list_tokens(all_users=True)} == {first.token_id, second.token_id,
                                                                      service_token.token_id}
    with pytest.raises(NotFound) as hidden:
        bob.revoke_token(first.token_id)
    with pytest.raises(NotFound) as absent:
        ops.store.get_token("0123456789abcdef")
    assert str(hidden.value) == str(absent.value).replace("0123456789abcdef", first.token_id)
    assert ana.revoke_token(first.token_id).revoked
    assert ops.revoke_token(service_token.token_id).revoked


# -- projects ---------------------------------------------------------------------------------------------
def test_members_are_managed_by_the_projects_owners(ops: AuthService) -> None:
    for name in ("ana", "bob", "cy"):
        ops.create_user(name, password=PASSWORD)
    ops.create_project("churn", "customer churn")
    ops.grant("churn", "ana", "owner")
    ops.grant("churn", "bob", "editor")
    ana, bob, cy = as_user(ops, "ana"), as_user(ops, "bob"), as_user(ops, "cy")
    with pytest.raises(PermissionDenied, match="needs the owner role; 'bob' holds editor"):
        bob.grant("churn", "cy", "viewer")
    with pytest.raises(PermissionDenied):
        bob.revoke("churn", "ana")
    assert [(m.user, m.role) for m in bob.members("churn")] == [("ana", Role.OWNER), ("bob", Role.EDITOR)]
    # a project one holds no role in does not exist for one, in the store's own words
    with pytest.raises(NotFound) as hidden:
        cy.members("churn")
    with pytest.raises(NotFound) as absent:
        ops.store.get_project("nope")
    assert str(hidden.value) == str(absent.value).replace("nope", "churn")
    with pytest.raises(NotFound):
        cy.grant("churn", "cy", "owner")
    assert ana.grant("churn", "cy", Role.VIEWER).role is Role.VIEWER
    assert [p.name for p in as_user(ops, "cy").list_projects()] == ["churn"]
    ana.revoke("churn", "cy")
    with pytest.raises(NotFound, match="not a member"):
        ana.revoke("churn", "cy")
    assert as_user(ops, "cy").list_projects() == []
    assert [p.name for p in ops.list_projects()] == ["churn", DEFAULT_PROJECT]


def test_projects_are_made_by_admins_with_valid_names(ops: AuthService) -> None:
    with pytest.raises(InvalidInput, match="project name"):
        ops.create_project("no spaces")
    project = ops.create_project("churn", "customer churn")
    assert (project.name, project.description, project.created_by) == ("churn", "customer churn", "operator")
    with pytest.raises(AlreadyExists):
        ops.create_project("churn")


# -- audit ------------------------------------------------------------------------------------------------
def test_the_audit_log_is_read_by_admins_and_by_a_projects_owners(ops: AuthService) -> None:
    for name in ("ana", "bob"):
        ops.create_user(name, password=PASSWORD)
    ops.create_project("churn")
    ops.grant("churn", "ana", "owner")
    ops.grant("churn", "bob", "maintainer")
    ops.record([AuditEvent(time=1, principal="ana", action="delete_run", method="DELETE", path="/r/1", status=200,
                           project="churn", object="run:1"),
                AuditEvent(time=2, principal="bob", action="create_experiment", method="POST", path="/e", status=200,
                           project=DEFAULT_PROJECT)])
    assert [e.time for e in ops.audit(AuditQuery())] == [2, 1]
    ana, bob = as_user(ops, "ana"), as_user(ops, "bob")
    assert [e.action for e in ana.audit(AuditQuery(project="churn"))] == ["delete_run"]
    with pytest.raises(PermissionDenied, match="name a project you own"):
        ana.audit(AuditQuery())
    with pytest.raises(NotFound):
        ana.audit(AuditQuery(project=DEFAULT_PROJECT))
    with pytest.raises(PermissionDenied, match="needs the owner role"):
        bob.audit(AuditQuery(project="churn"))
    with pytest.raises(PermissionDenied):
        bob.audit_jsonl(AuditQuery(project="churn"))  # refused when called, not when read
    lines = list(ana.audit_jsonl(AuditQuery(project="churn")))
    assert len(lines) == 1
    assert lines[0].endswith("\n")
    assert json.loads(lines[0])["object"] == "run:1"
