"""The Store contract on both engines (SQLite and a real PostgreSQL): meta, check-and-set, pruning, soft delete,
listing, restore, tokens, policies, tags, and the whole-store dump/load the migration uses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinko.errors import AlreadyExists, AlreadyInitialized, NotFound, VersionConflict
from kinko.storage.interface import SecretRow, Store, TokenRow, VersionRow
from kinko.storage.location import open_store
from tests.conftest import ENGINES, dump_storage, storage_for


@pytest.fixture(params=ENGINES)
def location(request: pytest.FixtureRequest) -> Path | str:
    return storage_for(request)


@pytest.fixture
def store(location: Path | str) -> Iterator[Store]:
    s = open_store(location)
    yield s
    s.close()


def _version(path: str, version: int, ct: bytes = b"ct", mac: str | None = None) -> VersionRow:
    return VersionRow(path=path, version=version, value_ct=ct, key_term=1, enabled=True, not_before=None,
                      expires=None, content_type="text", tags_json="{}", created=1.0, updated=1.0, mac=mac)


def _write(store: Store, path: str, version: int, expected: int | None, keep: int = 0) -> None:
    store.write_version(SecretRow(path, version, keep, 1.0, 1.0), _version(path, version), expected)


def _token(accessor: str, parent: str | None = None, uses: int = 0) -> TokenRow:
    return TokenRow(accessor, "h-" + accessor, parent, '["default"]', "t", "{}", 1.0, None, None, None, True,
                    uses, uses, "mac")


def test_meta_init_swap_delete(store: Store) -> None:
    store.init_meta({"a": b"1", "b": b"2"})
    with pytest.raises(AlreadyInitialized):
        store.init_meta({"c": b"3"})
    assert store.get_meta("c") is None
    assert not store.swap_meta("a", b"wrong", b"9") and store.get_meta("a") == b"1"
    assert store.swap_meta("a", b"1", b"9") and store.get_meta("a") == b"9"
    assert store.swap_meta("new", None, b"x") and store.get_meta("new") == b"x"
    assert not store.swap_meta("new", None, b"y")
    store.put_meta("new", b"\x00\xff")
    assert store.get_meta("new") == b"\x00\xff"
    store.delete_meta("new")
    assert store.get_meta("new") is None


def test_write_version_check_and_set(store: Store, location: Path | str) -> None:
    _write(store, "a/b", 1, 0)
    before = dump_storage(location)
    with pytest.raises(VersionConflict):
        _write(store, "a/b", 2, 0)  # must-not-exist, but it does
    with pytest.raises(VersionConflict):
        _write(store, "a/b", 2, 5)
    with pytest.raises(VersionConflict):
        _write(store, "a/b", 3, 1)  # a version number that skips one is a lost race, not a write
    assert dump_storage(location) == before
    _write(store, "a/b", 2, 1)
    _write(store, "a/b", 3, None)
    secret = store.get_secret("a/b")
    assert secret is not None and secret.current_version == 3


def test_concurrent_writers_with_the_same_cas_one_wins(location: Path | str) -> None:
    """Eight stores (as eight processes would have) write version 2 with cas=1 at once: exactly one succeeds."""
    first = open_store(location)
    _write(first, "race/x", 1, 0)
    stores = [open_store(location) for _ in range(8)]
    start, outcomes = threading.Barrier(len(stores)), []

    def writer(s: Store) -> None:
        start.wait()
        try:
            _write(s, "race/x", 2, 1)
            outcomes.append("won")
        except VersionConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=writer, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["won"]
    assert [r.version for r in first.list_versions("race/x")] == [1, 2]
    for s in [first, *stores]:
        s.close()


def test_max_versions_pruning_in_same_write(store: Store) -> None:
    for v in range(1, 6):
        _write(store, "a/b", v, None, keep=2)
    assert [r.version for r in store.list_versions("a/b")] == [4, 5]
    assert store.get_version("a/b", 3) is None


def test_deleted_secret_refuses_writes_and_purge_removes_versions(store: Store) -> None:
    _write(store, "a/b", 1, None)
    store.set_deleted("a/b", 10.0, 20.0, "tag")
    with pytest.raises(AlreadyExists):
        _write(store, "a/b", 2, None)
    assert [s.path for s in store.list_secrets("", deleted=True)] == ["a/b"]
    assert store.list_secrets("", deleted=False) == []
    assert store.get_live_version("a/b", None) is None and store.get_live_tags("a/b", None) is None
    store.purge("a/b")
    assert store.get_secret("a/b") is None and store.list_versions("a/b") == []
    with pytest.raises(NotFound):
        store.purge("a/b")
    with pytest.raises(NotFound):
        store.set_deleted("a/b", None, None, "tag")


def test_list_secrets_prefix_does_not_treat_like_wildcards_and_sorts_bytewise(store: Store) -> None:
    for path in ("a_b/x", "axb/y", "a_b", "a_bc/z", "B/1", "a/2", "Z/3"):
        _write(store, path, 1, None)
    assert [s.path for s in store.list_secrets("a_b", deleted=False)] == ["a_b", "a_b/x"]
    assert [s.path for s in store.list_secrets("", deleted=False)] == sorted(
        ["a_b/x", "axb/y", "a_b", "a_bc/z", "B/1", "a/2", "Z/3"])  # code point order on both engines


def test_live_reads_and_their_tags(store: Store) -> None:
    store.write_version(SecretRow("a/b", 1, 0, 1.0, 1.0, mac="S1"), _version("a/b", 1, b"one", mac="V1"), 0)
    store.write_version(SecretRow("a/b", 2, 0, 1.0, 2.0, mac="S2"), _version("a/b", 2, b"two", mac="V2"), 1)
    live = store.get_live_version("a/b", None)
    assert live is not None and (live.version, live.value_ct, live.secret_mac, live.mac) == (2, b"two", "S2", "V2")
    assert bool(live.enabled) is True and isinstance(live.created, float)
    old = store.get_live_version("a/b", 1)
    assert old is not None and old.value_ct == b"one"
    assert store.get_live_tags("a/b", None) == "S2V2" and store.get_live_tags("a/b", 1) == "S2V1"
    assert store.get_live_tags("a/b", 9) is None and store.get_live_version("nope", None) is None


def test_update_version_and_untagged_rows(store: Store) -> None:
    _write(store, "a/b", 1, None)
    row = store.get_version("a/b", 1)
    assert row is not None
    store.update_version(row._replace(enabled=False, value_ct=b"rewrapped", key_term=2))
    changed = store.get_version("a/b", 1)
    assert changed is not None and not changed.enabled and changed.value_ct == b"rewrapped"
    with pytest.raises(NotFound):
        store.update_version(row._replace(version=7))
    secrets, versions = store.untagged()
    assert [s.path for s in secrets] == ["a/b"] and [(v.path, v.version) for v in versions] == [("a/b", 1)]
    store.put_tags([("a/b", "S")], [("a/b", 1, "V")])
    store.put_tags([("a/b", "other")], [])  # a row that has a tag keeps it
    assert store.untagged() == ([], []) and store.get_live_tags("a/b", None) == "SV"


def test_a_destroyed_version_and_kv_settings_are_stored_as_given(store: Store, tmp_path: Path) -> None:
    """What the KV engine stores: a destroyed version keeps its row with an empty ciphertext and the key term
    2**31-1 (above every rotation, so rewrap passes over it); per-secret settings are meta keys under kv/settings/."""
    destroyed_term = 2**31 - 1
    _write(store, "kv/app", 1, None)
    row = store.get_version("kv/app", 1)
    assert row is not None
    store.update_version(row._replace(value_ct=b"", key_term=destroyed_term, updated=2.0))
    stored = store.get_version("kv/app", 1)
    assert stored is not None and stored.value_ct == b"" and stored.key_term == destroyed_term
    live = store.get_live_version("kv/app", None)
    assert live is not None and live.value_ct == b""
    assert store.versions_below_term(5, 10) == []
    store.put_meta("kv/settings/kv/app", b"\x01sealed")
    assert store.get_meta("kv/settings/kv/app") == b"\x01sealed"
    copy = open_store(tmp_path / "copy.db")
    copy.load(store.dump())  # and operator migrate carries both across engines
    assert copy.get_version("kv/app", 1) == stored and copy.get_meta("kv/settings/kv/app") == b"\x01sealed"
    copy.close()
    store.delete_meta("kv/settings/kv/app")
    assert store.get_meta("kv/settings/kv/app") is None


def test_restore_refuses_taken_path(store: Store) -> None:
    _write(store, "a/b", 1, None)
    with pytest.raises(AlreadyExists):
        store.restore(SecretRow("a/b", 1, 0, 1.0, 1.0), [_version("a/b", 1)])
    store.restore(SecretRow("c/d", 2, 0, 1.0, 1.0), [_version("c/d", 1), _version("c/d", 2)])
    assert [r.version for r in store.list_versions("c/d")] == [1, 2]


def test_versions_below_term(store: Store) -> None:
    _write(store, "a/b", 1, None)
    assert [r.version for r in store.versions_below_term(2, 10)] == [1]
    assert store.versions_below_term(1, 10) == []


def test_tokens_uses_expiry_and_tree_revocation(store: Store) -> None:
    for row in (_token("root"), _token("child", "root"), _token("grandchild", "child"), _token("other", uses=2)):
        store.insert_token(row)
    assert store.get_token_by_hash("h-child") == _token("child", "root")
    assert [t.accessor for t in store.list_tokens()] == ["child", "grandchild", "other", "root"]
    assert store.consume_token_use("other", 2, "m1") and not store.consume_token_use("other", 2, "m2")
    assert store.consume_token_use("other", 1, "m3") and store.get_token("other") is None  # last use deletes it
    store.set_token_expiry("root", 99.0, "m4")
    got = store.get_token("root")
    assert got is not None and got.expires == 99.0 and got.renewable is True
    with pytest.raises(NotFound):
        store.set_token_expiry("gone", 1.0, None)
    assert store.revoke_token_tree("child") == 2 and [t.accessor for t in store.list_tokens()] == ["root"]
    assert store.revoke_token_tree("child") == 0


def test_root_token_adoption_is_atomic(store: Store) -> None:
    store.init_meta({"root_hash": b"h-root"})
    assert not store.adopt_root_token("root_hash", _token("x"))  # a hash that is not the stored one
    assert store.adopt_root_token("root_hash", _token("root"))
    assert store.get_meta("root_hash") is None and store.get_token("root") is not None
    assert not store.adopt_root_token("root_hash", _token("root"))


def test_policies_bump_the_revision(store: Store) -> None:
    start = store.policy_revision()
    store.put_policy("p", "doc", 1.0, "mac")
    store.put_policy("p", "doc2", 2.0, "mac2")
    assert store.get_policy("p") == "doc2" and store.get_policy_entry("p") == ("doc2", "mac2")
    assert store.list_policies() == ["p"] and store.policy_revision() == start + 2
    assert store.delete_policy("p") and not store.delete_policy("p")
    assert store.policy_revision() == start + 3 and store.get_policy_entry("p") is None


def test_dump_and_load_copy_every_row_as_stored(store: Store, tmp_path: Path) -> None:
    store.init_meta({"vault_id": b"v", "wrapped": bytes(range(256))})
    store.write_version(SecretRow("a/b", 1, 3, 1.5, 2.5, mac="S"), _version("a/b", 1, b"\x00ct", mac="V"), 0)
    store.set_deleted("a/b", 3.0, 4.0, "S2")
    store.insert_token(_token("t1"))
    store.put_policy("p", "doc", 1.0, "mac")
    rows = store.dump()
    target = open_store(tmp_path / "copy.db")
    target.load(rows)
    assert target.dump() == rows
    with pytest.raises(AlreadyExists, match="not empty"):
        target.load(rows)
    target.close()
