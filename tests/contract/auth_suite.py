"""The AuthStore part of the store contract (mixed into the SQL backend test classes, so it runs
against SQLite file and memory stores and PostgreSQL). Only ``SqlStore`` has ``.auth``: a remote
client administers access through the server's auth API, which has tests of its own.

The PostgreSQL database is shared by the whole session, so every test makes its own names and
never assumes a table is empty."""

from __future__ import annotations

import inspect
import uuid
from dataclasses import replace

import pytest
import sqlalchemy as sa

from shipyard.entities.auth import DEFAULT_PROJECT, ApiToken, AuditEvent, AuditQuery, Membership, Project, Role, User
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.store.protocol import AuthStore
from shipyard.store.sql import SqlStore


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _token_id() -> str:
    return uuid.uuid4().hex[:16]


def _event(time: int, **fields) -> AuditEvent:
    fields.setdefault("principal", "ana")
    fields.setdefault("action", "delete_run")
    fields.setdefault("method", "DELETE")
    fields.setdefault("path", "/api/v1/runs/r1")
    fields.setdefault("status", 200)
    return AuditEvent(time=time, **fields)


class AuthStoreContract:
    __test__ = False

    def auth(self, store: SqlStore) -> AuthStore:
        return store.auth

    def new_user(self, store: SqlStore, **fields) -> User:
        password_hash = fields.pop("password_hash", None)
        return self.auth(store).create_user(User(fields.pop("name", _name("user")), **fields),
                                            password_hash=password_hash)

    def new_project(self, store: SqlStore, **fields) -> Project:
        return self.auth(store).create_project(Project(fields.pop("name", _name("proj")), **fields))

    def new_token(self, store: SqlStore, user: str, **fields) -> ApiToken:
        secret_hash = fields.pop("secret_hash", "ab" * 32)
        token = ApiToken(fields.pop("token_id", _token_id()), user, fields.pop("name", "laptop"), **fields)
        return self.auth(store).create_token(token, secret_hash=secret_hash)

    # -- users -----------------------------------------------------------------------------------
    def test_auth_store_has_every_protocol_method_with_its_signature(self, store: SqlStore) -> None:
        auth = self.auth(store)
        methods = [n for n, v in vars(AuthStore).items() if callable(v) and not n.startswith("_")]
        assert "audit" in methods
        for name in methods:
            expected = inspect.signature(getattr(AuthStore, name))
            assert inspect.signature(getattr(type(auth), name)) == expected, name

    def test_user_create_get_and_password_hash(self, store: SqlStore) -> None:
        auth = self.auth(store)
        name = _name("ana")
        made = auth.create_user(User(name, email="ana@example.com", admin=True, creation_time=5),
                                password_hash="$argon2id$v=19$m=65536,t=3,p=4$abc$def")
        assert made.creation_time > 5
        assert made.last_update_time == made.creation_time
        assert auth.get_user(name) == made
        assert (made.email, made.admin, made.service, made.disabled) == ("ana@example.com", True, False, False)
        assert auth.password_hash(name) == "$argon2id$v=19$m=65536,t=3,p=4$abc$def"
        ci = self.new_user(store, service=True)
        assert auth.get_user(ci.name).service
        assert auth.password_hash(ci.name) is None

    def test_user_duplicate_and_missing(self, store: SqlStore) -> None:
        auth = self.auth(store)
        made = self.new_user(store)
        with pytest.raises(AlreadyExists, match=made.name):
            auth.create_user(User(made.name, email="other@example.com"), password_hash="x")
        assert auth.get_user(made.name) == made  # the refused create changed nothing
        missing = _name("ghost")
        for call in (lambda: auth.get_user(missing), lambda: auth.password_hash(missing),
                     lambda: auth.update_user(missing, email="a@b.c")):
            with pytest.raises(NotFound, match=missing):
                call()

    def test_user_update_changes_only_what_is_given(self, store: SqlStore) -> None:
        auth = self.auth(store)
        made = self.new_user(store, email="old@example.com", password_hash="h1")
        updated = auth.update_user(made.name, disabled=True)
        assert (updated.email, updated.admin, updated.disabled) == ("old@example.com", False, True)
        assert updated.last_update_time >= made.last_update_time
        assert updated.creation_time == made.creation_time
        assert auth.password_hash(made.name) == "h1"
        auth.update_user(made.name, email="", admin=True, disabled=False, password_hash="h2")
        got = auth.get_user(made.name)
        assert (got.email, got.admin, got.disabled) == ("", True, False)
        assert auth.password_hash(made.name) == "h2"
        assert auth.update_user(made.name) == got  # nothing given: nothing changes

    def test_user_list_is_by_name_and_count_follows(self, store: SqlStore) -> None:
        auth = self.auth(store)
        before = auth.count_users()
        stem = _name("list")
        for suffix in ("c", "a", "b"):
            self.new_user(store, name=f"{stem}-{suffix}")
        assert auth.count_users() == before + 3
        names = [u.name for u in auth.list_users()]
        assert names == sorted(names)
        assert [n for n in names if n.startswith(stem)] == [f"{stem}-a", f"{stem}-b", f"{stem}-c"]

    def test_user_over_long_fields_are_refused(self, store: SqlStore) -> None:
        with pytest.raises(InvalidInput, match="name"):
            self.new_user(store, name="n" * 300)
        with pytest.raises(InvalidInput, match="email"):
            self.new_user(store, email="e" * 400)

    # -- tokens ----------------------------------------------------------------------------------
    def test_token_create_and_get(self, store: SqlStore) -> None:
        auth = self.auth(store)
        user = self.new_user(store)
        project = self.new_project(store)
        made = self.new_token(store, user.name, name="ci", kind="api", project=project.name, role=Role.EDITOR,
                              expires=2**50, secret_hash="cd" * 32)
        assert made.creation_time > 0
        got, secret_hash = auth.get_token(made.token_id)
        assert got == made
        assert (got.user, got.name, got.kind, got.project, got.role, got.expires, got.last_used, got.revoked) == \
            (user.name, "ci", "api", project.name, Role.EDITOR, 2**50, None, False)
        assert isinstance(got.role, Role)
        assert secret_hash == "cd" * 32
        plain = self.new_token(store, user.name)
        assert auth.get_token(plain.token_id)[0].project is None
        assert auth.get_token(plain.token_id)[0].role is None

    def test_token_holder_reads_the_token_its_user_and_their_projects_at_once(self, store: SqlStore) -> None:
        auth = self.auth(store)
        user = self.new_user(store)
        project = self.new_project(store)
        auth.set_member(project.name, user.name, Role.MAINTAINER)
        made = self.new_token(store, user.name, secret_hash="ef" * 32)
        token, secret_hash, holder, members = auth.token_holder(made.token_id)
        assert (token, secret_hash, holder) == (made, "ef" * 32, auth.get_user(user.name))
        assert members == auth.grants(user.name) == [Membership(project.name, user.name, Role.MAINTAINER)]
        missing = _token_id()
        with pytest.raises(NotFound, match=missing):
            auth.token_holder(missing)

    def test_token_for_unknown_user_or_project_and_taken_id(self, store: SqlStore) -> None:
        auth = self.auth(store)
        ghost = _name("ghost")
        with pytest.raises(NotFound, match=ghost):
            self.new_token(store, ghost)
        user = self.new_user(store)
        nowhere = _name("nowhere")
        with pytest.raises(NotFound, match=nowhere):
            self.new_token(store, user.name, project=nowhere, role=Role.VIEWER)
        assert auth.list_tokens(user.name) == []
        made = self.new_token(store, user.name)
        with pytest.raises(AlreadyExists, match=made.token_id):
            self.new_token(store, user.name, token_id=made.token_id)
        missing = _token_id()
        for call in (lambda: auth.get_token(missing), lambda: auth.revoke_token(missing)):
            with pytest.raises(NotFound, match=missing):
                call()

    def test_token_list_by_user_and_kind_newest_first(self, store: SqlStore) -> None:
        auth = self.auth(store)
        ana, bob = self.new_user(store), self.new_user(store)
        made = [self.new_token(store, ana.name, name=f"t{i}", kind="session" if i % 2 else "api") for i in range(4)]
        theirs = self.new_token(store, bob.name, kind="session")
        # Made one after another, even within one millisecond: each is newer than the one before.
        assert [t.token_id for t in auth.list_tokens(ana.name)] == [t.token_id for t in reversed(made)]
        assert [t.name for t in auth.list_tokens(ana.name, kind="session")] == ["t3", "t1"]
        assert [t.name for t in auth.list_tokens(ana.name, kind="api")] == ["t2", "t0"]
        assert [t.token_id for t in auth.list_tokens(bob.name)] == [theirs.token_id]
        everyone = auth.list_tokens()
        assert {t.token_id for t in made} | {theirs.token_id} <= {t.token_id for t in everyone}
        times = [t.creation_time for t in everyone]
        assert times == sorted(times, reverse=True)
        sessions = auth.list_tokens(kind="session")
        assert {t.kind for t in sessions} == {"session"}
        assert theirs.token_id in {t.token_id for t in sessions}
        assert auth.list_tokens(_name("nobody")) == []

    def test_tokens_made_within_one_millisecond_still_list_newest_first(self, store: SqlStore,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("shipyard.store.sql.auth.now_ms", lambda: 1_000)  # a frozen clock
        auth = self.auth(store)
        user = self.new_user(store)
        made = [self.new_token(store, user.name, name=f"t{i}") for i in range(5)]
        assert [t.name for t in auth.list_tokens(user.name)] == ["t4", "t3", "t2", "t1", "t0"]
        assert [t.creation_time for t in made] == [1_000, 1_001, 1_002, 1_003, 1_004]

    def test_token_revoke_keeps_it_listed(self, store: SqlStore) -> None:
        auth = self.auth(store)
        user = self.new_user(store)
        made = self.new_token(store, user.name)
        kept = self.new_token(store, user.name)
        auth.revoke_token(made.token_id)
        auth.revoke_token(made.token_id)  # again: still revoked, no error
        assert auth.get_token(made.token_id)[0].revoked
        assert not auth.get_token(kept.token_id)[0].revoked
        assert {t.token_id: t.revoked for t in auth.list_tokens(user.name)} == \
            {made.token_id: True, kept.token_id: False}

    def test_token_touch_records_the_last_use_and_never_goes_back(self, store: SqlStore) -> None:
        auth = self.auth(store)
        user = self.new_user(store)
        made = self.new_token(store, user.name)
        auth.touch_token(made.token_id, 1_000)
        assert auth.get_token(made.token_id)[0].last_used == 1_000
        auth.touch_token(made.token_id, 5_000)
        auth.touch_token(made.token_id, 3_000)  # an older request finishing late
        got = auth.get_token(made.token_id)[0]
        assert got.last_used == 5_000
        assert replace(got, last_used=None) == made
        auth.touch_token(_token_id(), 1_000)  # unknown: nothing happens

    # -- projects and members --------------------------------------------------------------------
    def test_the_default_project_exists(self, store: SqlStore) -> None:
        auth = self.auth(store)
        default = auth.get_project(DEFAULT_PROJECT)
        assert default.name == DEFAULT_PROJECT
        assert default.creation_time > 0
        assert DEFAULT_PROJECT in [p.name for p in auth.list_projects()]

    def test_project_create_get_list_and_duplicate(self, store: SqlStore) -> None:
        auth = self.auth(store)
        made = self.new_project(store, description="churn models", created_by="ana", creation_time=3)
        assert made.creation_time > 3
        assert auth.get_project(made.name) == made
        assert (made.description, made.created_by) == ("churn models", "ana")
        with pytest.raises(AlreadyExists, match=made.name):
            self.new_project(store, name=made.name)
        with pytest.raises(AlreadyExists, match=DEFAULT_PROJECT):
            self.new_project(store, name=DEFAULT_PROJECT)
        missing = _name("nowhere")
        with pytest.raises(NotFound, match=missing):
            auth.get_project(missing)
        names = [p.name for p in auth.list_projects()]
        assert names == sorted(names)
        assert made.name in names

    def test_members_set_replace_remove(self, store: SqlStore) -> None:
        auth = self.auth(store)
        project = self.new_project(store)
        stem = _name("m")
        zoe, ana = self.new_user(store, name=f"{stem}-zoe"), self.new_user(store, name=f"{stem}-ana")
        assert auth.members(project.name) == []
        auth.set_member(project.name, zoe.name, Role.VIEWER)
        auth.set_member(project.name, ana.name, Role.OWNER)
        assert auth.members(project.name) == [Membership(project.name, ana.name, Role.OWNER),
                                              Membership(project.name, zoe.name, Role.VIEWER)]
        assert all(isinstance(m.role, Role) for m in auth.members(project.name))
        auth.set_member(project.name, zoe.name, Role.MAINTAINER)  # replaces, never a second row
        assert auth.members(project.name) == [Membership(project.name, ana.name, Role.OWNER),
                                              Membership(project.name, zoe.name, Role.MAINTAINER)]
        auth.set_member(project.name, ana.name, None)
        auth.set_member(project.name, ana.name, None)  # removing a non-member: nothing to do
        assert auth.members(project.name) == [Membership(project.name, zoe.name, Role.MAINTAINER)]

    def test_members_of_unknown_project_or_user(self, store: SqlStore) -> None:
        auth = self.auth(store)
        project = self.new_project(store)
        user = self.new_user(store)
        missing_project, missing_user = _name("nowhere"), _name("ghost")
        with pytest.raises(NotFound, match=missing_project):
            auth.members(missing_project)
        with pytest.raises(NotFound, match=missing_project):
            auth.set_member(missing_project, user.name, Role.VIEWER)
        with pytest.raises(NotFound, match=missing_user):
            auth.set_member(project.name, missing_user, Role.VIEWER)
        with pytest.raises(InvalidInput, match="role"):
            auth.set_member(project.name, user.name, 9)  # type: ignore[arg-type]
        assert auth.members(project.name) == []

    def test_grants_list_a_users_projects_by_name(self, store: SqlStore) -> None:
        auth = self.auth(store)
        user = self.new_user(store)
        stem = _name("g")
        second, first = self.new_project(store, name=f"{stem}-b"), self.new_project(store, name=f"{stem}-a")
        auth.set_member(second.name, user.name, Role.EDITOR)
        auth.set_member(first.name, user.name, Role.VIEWER)
        auth.set_member(DEFAULT_PROJECT, user.name, Role.OWNER)
        expected = sorted([Membership(second.name, user.name, Role.EDITOR),
                           Membership(first.name, user.name, Role.VIEWER),
                           Membership(DEFAULT_PROJECT, user.name, Role.OWNER)], key=lambda m: m.project)
        assert auth.grants(user.name) == expected
        assert auth.grants(_name("ghost")) == []

    # -- single sign-on identities ---------------------------------------------------------------
    def test_linked_user_is_made_with_its_identity_and_grants_at_once(self, store: SqlStore) -> None:
        auth = self.auth(store)
        issuer, subject, name = "https://id.example/" + _name("realm"), _name("sub"), _name("ada")
        project = self.new_project(store)
        made = auth.create_linked_user(User(name, email="ada@example.com"), issuer=issuer, subject=subject,
                                       grants=[(project.name, Role.EDITOR), (DEFAULT_PROJECT, Role.VIEWER)])
        assert made.creation_time > 0
        assert auth.get_user(name) == made
        assert auth.password_hash(name) is None
        assert auth.user_by_identity(issuer, subject) == made
        assert {(m.project, m.role) for m in auth.grants(name)} == {(project.name, Role.EDITOR),
                                                                    (DEFAULT_PROJECT, Role.VIEWER)}
        with pytest.raises(NotFound):
            auth.user_by_identity(issuer + "/other", subject)  # the same subject at another provider is another person
        with pytest.raises(NotFound):
            auth.user_by_identity(issuer, subject + "x")

    def test_linked_user_refusals_leave_nothing_behind(self, store: SqlStore) -> None:
        auth = self.auth(store)
        issuer, subject = "https://id.example/" + _name("realm"), _name("sub")
        local = self.new_user(store)
        with pytest.raises(AlreadyExists) as taken:
            auth.create_linked_user(User(local.name), issuer=issuer, subject=subject)
        assert taken.value.details["user"] == local.name
        fresh = _name("bea")
        with pytest.raises(NotFound):  # an unknown project: neither the user nor its link is kept
            auth.create_linked_user(User(fresh), issuer=issuer, subject=subject, grants=[(_name("ghost"), Role.VIEWER)])
        with pytest.raises(NotFound):
            auth.get_user(fresh)
        with pytest.raises(NotFound):
            auth.user_by_identity(issuer, subject)
        auth.create_linked_user(User(fresh), issuer=issuer, subject=subject)
        with pytest.raises(AlreadyExists) as linked:
            auth.create_linked_user(User(_name("cid")), issuer=issuer, subject=subject)
        assert linked.value.details["subject"] == subject
        with pytest.raises(InvalidInput, match="issuer"):
            auth.create_linked_user(User(_name("dee")), issuer="https://" + "x" * 600, subject=subject)

    # -- audit -----------------------------------------------------------------------------------
    def test_audit_record_and_read_back_newest_first(self, store: SqlStore) -> None:
        auth = self.auth(store)
        project = _name("audited")
        events = [_event(1_000 + i, project=project, object=f"run:{i}", address="10.0.0.1", request_id=f"req-{i}",
                         detail=f"note {i}") for i in range(3)]
        auth.record_audit(events)
        auth.record_audit([])
        got = auth.audit(AuditQuery(project=project))
        assert [e.object for e in got] == ["run:2", "run:1", "run:0"]
        assert all(isinstance(e.event_id, int) for e in got)
        assert [replace(e, event_id=None) for e in got] == list(reversed(events))

    def test_audit_same_time_is_newest_recorded_first(self, store: SqlStore) -> None:
        auth = self.auth(store)
        project = _name("audited")
        auth.record_audit([_event(7_000, project=project, object="run:first")])
        auth.record_audit([_event(7_000, project=project, object="run:second")])
        assert [e.object for e in auth.audit(AuditQuery(project=project))] == ["run:second", "run:first"]

    def test_audit_query_by_each_field(self, store: SqlStore) -> None:
        auth = self.auth(store)
        tag = _name("q")
        auth.record_audit([
            _event(1, principal=f"{tag}-ana", action="create_run", project=f"{tag}-p1", object=f"{tag}-run:a"),
            _event(2, principal=f"{tag}-bob", action="delete_run", project=f"{tag}-p1", object=f"{tag}-run:b"),
            _event(3, principal=f"{tag}-ana", action="delete_run", project=f"{tag}-p2", object=f"{tag}-run:b"),
            _event(4, principal=f"{tag}-bob", action="create_run", project=None, object=None, status=401),
        ])

        def times(**fields) -> list[int]:
            return [e.time for e in auth.audit(AuditQuery(**fields))]

        assert times(project=f"{tag}-p1") == [2, 1]
        assert times(principal=f"{tag}-ana") == [3, 1]
        assert times(principal=f"{tag}-bob") == [4, 2]
        assert times(object=f"{tag}-run:b") == [3, 2]
        assert times(principal=f"{tag}-bob", action="create_run") == [4]
        assert times(project=f"{tag}-p1", action="delete_run") == [2]
        assert times(principal=f"{tag}-ana", project=f"{tag}-p2", object=f"{tag}-run:b") == [3]
        assert times(project=f"{tag}-nowhere") == []
        assert auth.audit(AuditQuery(principal=f"{tag}-bob", since=4))[0].status == 401

    def test_audit_since_until_and_limit(self, store: SqlStore) -> None:
        auth = self.auth(store)
        principal = _name("who")
        auth.record_audit([_event(t, principal=principal) for t in (100, 200, 300, 400, 500)])

        def times(**fields) -> list[int]:
            return [e.time for e in auth.audit(AuditQuery(principal=principal, **fields))]

        assert times(since=200) == [500, 400, 300, 200]  # since is inclusive
        assert times(until=400) == [300, 200, 100]  # until is exclusive
        assert times(since=200, until=400) == [300, 200]
        assert times(since=600) == []
        assert times(limit=2) == [500, 400]
        assert times(since=200, limit=1) == [500]
        for bad in (0, -1, True, "5"):
            with pytest.raises(InvalidInput, match="limit"):
                auth.audit(AuditQuery(principal=principal, limit=bad))  # type: ignore[arg-type]

    def test_audit_over_long_fields_are_cut_not_lost(self, store: SqlStore) -> None:
        auth = self.auth(store)
        principal = _name("long")
        auth.record_audit([_event(1, principal=principal, path="/x" * 5000, detail="d" * 9000,
                                  object="o" * 2000, request_id="r" * 500)])
        (got,) = auth.audit(AuditQuery(principal=principal))
        assert got.path.startswith("/x/x")
        assert len(got.path) == 2000
        assert (len(got.detail), len(got.object or ""), len(got.request_id or "")) == (5000, 1000, 256)

    def test_audit_events_cannot_be_changed_or_deleted_even_by_sql(self, store: SqlStore) -> None:
        auth = self.auth(store)
        principal = _name("kept")
        auth.record_audit([_event(1, principal=principal, detail="as it happened")])
        statements = [
            "UPDATE audit_events SET detail = 'rewritten' WHERE principal = :p",
            "DELETE FROM audit_events WHERE principal = :p",
            "DELETE FROM audit_events",
        ]
        if store.db.dialect == "postgresql":
            statements.append("TRUNCATE audit_events")
        for statement in statements:
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.db.engine.begin() as conn:
                conn.execute(sa.text(statement), {"p": principal})
        (got,) = auth.audit(AuditQuery(principal=principal))
        assert got.detail == "as it happened"
