"""The ModelStore part of the store contract (mixed into StoreContract, so it runs against
SQLite, PostgreSQL and the REST store)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from shipyard.artifacts import open_artifact_store
from shipyard.auth import Principal
from shipyard.entities import (
    DEFAULT_PROTECTED_ALIASES,
    EVENT_KINDS,
    MODEL_GRAMMAR,
    VERSION_GRAMMAR,
    RegistryQuery,
    VersionStatus,
)
from shipyard.errors import AlreadyExists, ApprovalRequired, Conflict, InvalidInput, NotFound
from shipyard.filters import parse_filter, parse_order_by
from shipyard.models.registry import RegistryService
from shipyard.store import Store


def _name(prefix: str = "model") -> str:
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def user_tags(version) -> dict[str, str]:
    """A version's tags less the ``shipyard.*`` ones a server records from the package."""
    return {k: v for k, v in version.tags.items() if not k.startswith("shipyard.")}


def models_where(text: str, **kwargs) -> RegistryQuery:
    return RegistryQuery(parse_filter(text, MODEL_GRAMMAR), **kwargs)


def versions_where(text: str, **kwargs) -> RegistryQuery:
    return RegistryQuery(parse_filter(text, VERSION_GRAMMAR), **kwargs)


class ModelStoreContract:
    __test__ = False
    # A server records its authenticated principal, not the user a client claims.
    records_given_user = True

    def model_source(self, store: Store) -> str:
        """A source the store accepts: a real run's model folder (a store that checks the
        package, like a server, overrides this to also log the ``MLmodel`` file)."""
        return f"runs:/{self.new_run(store).info.run_id}/model"

    def new_model(self, store: Store, versions: int = 0, **kwargs) -> str:
        name = _name()
        store.models.create_model(name, **kwargs)
        source = self.model_source(store) if versions else ""
        for _ in range(versions):
            store.models.create_version(name, source=source)
        return name

    def user(self, given: str) -> str:
        return given if self.records_given_user else self.server_user

    def kinds(self, store: Store, name: str) -> list[str]:
        return [e.kind for e in store.models.history(name)]

    # -- registered models ---------------------------------------------------------------
    def test_create_and_get_model(self, store: Store) -> None:
        name = _name()
        model = store.models.create_model(name, description="churn model", tags={"team": "growth"}, user="ana")
        assert (model.name, model.description, model.tags) == (name, "churn model", {"team": "growth"})
        assert model.latest_version is None
        assert model.aliases == {}
        assert model.protected_aliases == DEFAULT_PROTECTED_ALIASES
        assert model.creation_time > 0
        assert store.models.get_model(name) == model
        [event] = store.models.history(name)
        assert (event.kind, event.name, event.user) == ("model_created", name, self.user("ana"))

    def test_duplicate_model_name(self, store: Store) -> None:
        name = self.new_model(store)
        with pytest.raises(AlreadyExists, match=name):
            store.models.create_model(name)
        assert self.kinds(store, name) == ["model_created"]

    @pytest.mark.parametrize("call", [
        lambda s, n: s.models.get_model(n),
        lambda s, n: s.models.update_model(n, description="x"),
        lambda s, n: s.models.delete_model(n),
        lambda s, n: s.models.set_model_tags(n, {"a": "b"}),
        lambda s, n: s.models.create_version(n, source=f"runs:/{'0' * 32}/model"),
        lambda s, n: s.models.get_version(n, 1),
        lambda s, n: s.models.set_alias(n, "staging", 1),
        lambda s, n: s.models.get_version_by_alias(n, "staging"),
        lambda s, n: s.models.history(n),
        lambda s, n: s.models.rename_model(n, n + "-b"),
    ], ids=["get", "update", "delete", "tags", "create_version", "get_version", "set_alias", "by_alias",
            "history", "rename"])
    def test_unknown_model(self, store: Store, call) -> None:
        name = _name("missing")
        with pytest.raises(NotFound, match=name):
            call(store, name)

    def test_update_and_tags(self, store: Store) -> None:
        name = self.new_model(store)
        assert store.models.update_model(name, description="new").description == "new"
        store.models.set_model_tags(name, {"a": "1", "b": "2"})
        store.models.set_model_tags(name, {"a": "3"})
        store.models.delete_model_tag(name, "b")
        assert store.models.get_model(name).tags == {"a": "3"}
        with pytest.raises(NotFound, match="no tag 'b'"):
            store.models.delete_model_tag(name, "b")
        assert self.kinds(store, name) == ["model_created", "model_updated", "model_tag_set", "model_tag_set",
                                           "model_tag_deleted"]

    def test_rename_carries_versions_aliases_and_history(self, store: Store) -> None:
        name = self.new_model(store, versions=2)
        store.models.set_alias(name, "staging", 2)
        new = name + "-renamed"
        renamed = store.models.rename_model(name, new, user="bo")
        assert (renamed.latest_version, renamed.aliases) == (2, {"staging": 2})
        assert store.models.get_version_by_alias(new, "staging").name == new
        with pytest.raises(NotFound):
            store.models.get_model(name)
        events = store.models.history(new)
        assert events[-1].kind == "model_renamed"
        assert events[-1].detail == name
        assert events[-1].name == new
        assert events[0].name == name  # what it was called then
        taken = self.new_model(store)
        with pytest.raises(AlreadyExists, match=taken):
            store.models.rename_model(new, taken)

    # -- versions ------------------------------------------------------------------------
    def test_versions_are_numbered_and_never_reused(self, store: Store) -> None:
        name = self.new_model(store, versions=3)
        assert [store.models.get_version(name, n).version for n in (1, 2, 3)] == [1, 2, 3]
        store.models.delete_version(name, 3)
        assert store.models.get_model(name).latest_version == 2
        assert store.models.create_version(name, source=self.model_source(store)).version == 4
        with pytest.raises(NotFound, match="no version 3"):
            store.models.get_version(name, 3)

    def test_version_records_its_run(self, store: Store) -> None:
        source = self.model_source(store)
        run_id = source.split("/")[1]
        name = self.new_model(store)
        version = store.models.create_version(name, source=source, run_id=run_id, description="first",
                                              tags={"stage": "candidate"}, user="ana")
        assert (version.version, version.run_id, version.description, user_tags(version)) == \
            (1, run_id, "first", {"stage": "candidate"})
        assert version.status is VersionStatus.READY
        assert version.approval is None
        assert version.card == ""
        assert version.source == source
        assert store.models.get_version(name, 1) == version
        assert store.models.history(name)[-1].version == 1

    def test_version_of_unknown_run(self, store: Store) -> None:
        name = self.new_model(store)
        with pytest.raises(NotFound, match="a" * 32):
            store.models.create_version(name, source=f"runs:/{'a' * 32}/model", run_id="a" * 32)
        assert store.models.get_model(name).latest_version is None
        assert self.kinds(store, name) == ["model_created"]

    def test_update_version_and_tags(self, store: Store) -> None:
        name = self.new_model(store, versions=1)
        updated = store.models.update_version(name, 1, description="d", status=VersionStatus.FAILED,
                                              card="# Card\n\nText")
        assert (updated.description, updated.status, updated.card) == ("d", VersionStatus.FAILED, "# Card\n\nText")
        store.models.set_version_tags(name, 1, {"k": "v", "x": "y"})
        store.models.delete_version_tag(name, 1, "x")
        assert user_tags(store.models.get_version(name, 1)) == {"k": "v"}
        with pytest.raises(NotFound, match="no tag 'x'"):
            store.models.delete_version_tag(name, 1, "x")
        with pytest.raises(NotFound, match="no version 9"):
            store.models.update_version(name, 9, description="x")

    def test_concurrent_registrations_get_distinct_numbers(self, store: Store) -> None:
        name = self.new_model(store)
        source = self.model_source(store)
        numbers: list[int] = []
        errors: list[BaseException] = []

        def register() -> None:
            try:
                for _ in range(5):
                    numbers.append(store.models.create_version(name, source=source).version)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=register) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert sorted(numbers) == list(range(1, 21))

    # -- aliases -------------------------------------------------------------------------
    def test_alias_set_move_delete_with_history(self, store: Store) -> None:
        name = self.new_model(store, versions=2)
        assert store.models.set_alias(name, "staging", 1, user="ana").aliases == ("staging",)
        store.models.set_alias(name, "staging", 2, user="bo")
        store.models.set_alias(name, "staging", 2)  # no move, no event
        assert store.models.get_version_by_alias(name, "staging").version == 2
        assert store.models.get_version(name, 1).aliases == ()
        assert store.models.get_model(name).aliases == {"staging": 2}
        store.models.delete_alias(name, "staging", user="cy")
        with pytest.raises(NotFound, match="no alias 'staging'"):
            store.models.get_version_by_alias(name, "staging")
        with pytest.raises(NotFound, match="no alias 'staging'"):
            store.models.delete_alias(name, "staging")
        moves = [(e.kind, e.alias, e.version, e.previous_version, e.user)
                 for e in store.models.history(name) if e.kind.startswith("alias")]
        assert moves == [("alias_set", "staging", 1, None, self.user("ana")),
                         ("alias_set", "staging", 2, 1, self.user("bo")),
                         ("alias_deleted", "staging", None, 2, self.user("cy"))]

    def test_alias_to_missing_version(self, store: Store) -> None:
        name = self.new_model(store, versions=1)
        store.models.set_alias(name, "staging", 1)
        with pytest.raises(NotFound, match="no version 7"):
            store.models.set_alias(name, "staging", 7)
        assert store.models.get_model(name).aliases == {"staging": 1}

    def test_approvals_and_protected_aliases_are_recorded(self, store: Store) -> None:
        name = self.new_model(store, versions=2)
        with pytest.raises(InvalidInput, match="who approves"):
            store.models.approve_version(name, 1, user="")
        approved = store.models.approve_version(name, 1, user="lead", comment="offline eval ok")
        assert (approved.approval.user, approved.approval.comment) == (self.user("lead"), "offline eval ok")
        assert approved.approval.timestamp > 0
        store.models.set_alias(name, "production", 1)
        assert store.models.protect_alias(name, "champion").protected_aliases == ("champion", "production")
        store.models.protect_alias(name, "production", False, user="admin")
        store.models.set_alias(name, "production", 2)
        kinds = self.kinds(store, name)
        assert kinds[-4:] == ["alias_set", "alias_protected", "alias_unprotected", "alias_set"]
        assert "version_approved" in kinds
        assert set(kinds) <= set(EVENT_KINDS)

    def test_protected_alias_needs_approval(self, store: Store, tmp_path: Path) -> None:
        """The approval rule is the registry service's (#14), so it holds over every store."""
        registry = RegistryService(store, open_artifact_store(str(tmp_path)), Principal("lead"))
        name = self.new_model(store, versions=2)
        with pytest.raises(ApprovalRequired, match=r"production.*version 1 must be approved"):
            registry.set_alias(name, "production", 1)
        assert store.models.get_model(name).aliases == {}
        approved = registry.approve_model_version(name, 1, comment="offline eval ok")
        assert (approved.approval.user, approved.approval.comment) == (self.user("lead"), "offline eval ok")
        registry.set_alias(name, "production", 1)
        # Protecting another alias; unprotecting production lets version 2 in unapproved.
        assert registry.protect_alias(name, "champion").protected_aliases == ("champion", "production")
        with pytest.raises(ApprovalRequired):
            registry.set_alias(name, "champion", 2)
        registry.protect_alias(name, "production", False)
        registry.set_alias(name, "production", 2)
        kinds = self.kinds(store, name)
        assert kinds[-4:] == ["alias_set", "alias_protected", "alias_unprotected", "alias_set"]
        assert "version_approved" in kinds

    def test_delete_aliased_version_refused_unless_forced(self, store: Store) -> None:
        name = self.new_model(store, versions=2)
        store.models.set_alias(name, "staging", 2)
        store.models.set_alias(name, "canary", 2)
        with pytest.raises(Conflict, match="canary, staging"):
            store.models.delete_version(name, 2)
        assert store.models.get_version(name, 2).aliases == ("canary", "staging")
        store.models.delete_version(name, 2, force=True)
        assert store.models.get_model(name).aliases == {}
        assert self.kinds(store, name)[-3:] == ["alias_deleted", "alias_deleted", "version_deleted"]

    def test_new_model_has_its_own_history(self, store: Store) -> None:
        # A deleted model's id must never be reused: the history is read by id.
        gone = self.new_model(store)
        store.models.set_model_tags(gone, {"a": "b"})
        store.models.delete_model(gone)
        name = self.new_model(store)
        assert [(e.name, e.kind) for e in store.models.history(name)] == [(name, "model_created")]

    def test_delete_model(self, store: Store) -> None:
        name = self.new_model(store, versions=1)
        store.models.set_alias(name, "staging", 1)
        with pytest.raises(Conflict, match="staging"):
            store.models.delete_model(name)
        store.models.delete_model(name, force=True)
        with pytest.raises(NotFound):
            store.models.get_model(name)
        again = store.models.create_model(name)
        assert again.latest_version is None
        assert store.models.create_version(name, source=self.model_source(store)).version == 1

    # -- search --------------------------------------------------------------------------
    def test_search_models(self, store: Store) -> None:
        prefix = _name("search")
        for n in range(5):
            store.models.create_model(f"{prefix}-{n}", tags={"team": "a" if n % 2 else "b"})
        page = store.models.search_models(models_where(f"name LIKE '{prefix}-%'", max_results=2))
        names = [m.name for m in page.items]
        while page.next_page_token:
            page = store.models.search_models(models_where(f"name LIKE '{prefix}-%'", max_results=2,
                                                           page_token=page.next_page_token))
            names += [m.name for m in page.items]
        assert names == [f"{prefix}-{n}" for n in range(5)]
        found = store.models.search_models(models_where(f"name LIKE '{prefix}%' and tags.team = 'a'"))
        assert [m.name for m in found.items] == [f"{prefix}-1", f"{prefix}-3"]
        store.models.create_model(f"{prefix}-untagged")
        # Registry rule (MLflow's): != also matches models without the tag; IS NULL only those.
        found = store.models.search_models(models_where(f"name LIKE '{prefix}%' and tags.team != 'a'"))
        assert [m.name for m in found.items] == [f"{prefix}-0", f"{prefix}-2", f"{prefix}-4", f"{prefix}-untagged"]
        found = store.models.search_models(models_where(f"name LIKE '{prefix}%' and tags.team IS NULL"))
        assert [m.name for m in found.items] == [f"{prefix}-untagged"]
        newest_first = parse_order_by(["creation_timestamp DESC"], MODEL_GRAMMAR)
        found = store.models.search_models(models_where(f"name LIKE '{prefix}%'", order_by=newest_first))
        assert found.items[0].name == f"{prefix}-untagged"
        with pytest.raises(InvalidInput, match="cannot order by"):
            store.models.search_models(models_where("", order_by=parse_order_by(["tags.team"], MODEL_GRAMMAR)))
        with pytest.raises(InvalidInput, match="page token"):
            store.models.search_models(RegistryQuery(page_token="nope"))

    def test_search_versions(self, store: Store) -> None:
        name = self.new_model(store, versions=3)
        store.models.set_version_tags(name, 2, {"candidate": "yes"})
        found = store.models.search_versions(versions_where(f"name = '{name}'"))
        assert [v.version for v in found.items] == [3, 2, 1]
        found = store.models.search_versions(versions_where(f"name = '{name}' and version >= 2"))
        assert [v.version for v in found.items] == [3, 2]
        found = store.models.search_versions(versions_where(f"name = '{name}' and tags.candidate = 'yes'"))
        assert [v.version for v in found.items] == [2]
        found = store.models.search_versions(versions_where(f"name = '{name}' and tags.candidate IS NOT NULL"))
        assert [v.version for v in found.items] == [2]
        found = store.models.search_versions(versions_where(f"name = '{name}' and tags.candidate != 'yes'"))
        assert [v.version for v in found.items] == [3, 1]
        oldest_first = parse_order_by(["version_number ASC"], VERSION_GRAMMAR)
        found = store.models.search_versions(versions_where(f"name = '{name}'", order_by=oldest_first))
        assert [v.version for v in found.items] == [1, 2, 3]
        found = store.models.search_versions(versions_where(f"name = '{name}' and status = 'READY'"))
        assert len(found.items) == 3

    def test_search_versions_ties_fall_to_name_then_newest_version(self, store: Store) -> None:
        prefix = _name("ties")
        for suffix in ("b", "a"):  # created in the reverse of name order
            store.models.create_model(f"{prefix}-{suffix}")
            for _ in range(2):
                store.models.create_version(f"{prefix}-{suffix}", source=self.model_source(store))
        newest_number = parse_order_by(["version_number DESC"], VERSION_GRAMMAR)
        found = store.models.search_versions(versions_where(f"name LIKE '{prefix}%'", order_by=newest_number))
        assert [(v.name[-1], v.version) for v in found.items] == [("a", 2), ("b", 2), ("a", 1), ("b", 1)]
        by_source = store.models.search_versions(versions_where(f"name = '{prefix}-a' and source_path LIKE 'runs:/%'"))
        assert [v.version for v in by_source.items] == [2, 1]  # MLflow's name for the source

    def test_version_edits_move_the_version_not_the_model(self, store: Store) -> None:
        import time

        name = self.new_model(store, versions=1)
        before = store.models.get_model(name).last_update_time
        time.sleep(0.01)
        store.models.update_version(name, 1, description="edited")
        assert store.models.get_model(name).last_update_time == before
        edited = store.models.get_version(name, 1).last_update_time
        time.sleep(0.01)
        store.models.set_version_tags(name, 1, {"stage": "Staging"})
        assert store.models.get_version(name, 1).last_update_time > edited
        assert store.models.get_model(name).last_update_time > before

    def test_registry_filters_are_checked(self, store: Store) -> None:
        with pytest.raises(InvalidInput, match="cannot filter on metrics"):
            parse_filter("metrics.acc > 1", VERSION_GRAMMAR)
        with pytest.raises(InvalidInput, match="unknown attribute 'run_id'"):
            parse_filter("attributes.run_id = 'x'", MODEL_GRAMMAR)
