"""Pseudonymisation and forget-user."""

from __future__ import annotations

import json
import re
from unittest.mock import ANY

from hypothesis import given
from hypothesis import strategies as st

from shoprec import changes, cli
from shoprec.data.privacy import forget_user, pseudonymize
from shoprec.data.schemas import Event, User
from shoprec.data.store import open_store


@given(st.text(min_size=1, max_size=50))
def test_pseudonym_shape_and_determinism(user_id):
    p = pseudonymize(user_id, "k1")
    assert re.fullmatch(r"u_[0-9a-f]{32}", p)
    assert p == pseudonymize(user_id, "k1")
    assert p != pseudonymize(user_id, "k2")


def test_distinct_ids_distinct_pseudonyms_and_long_keys():
    ids = [f"user{i}" for i in range(2000)]
    assert len({pseudonymize(i, "k") for i in ids}) == 2000
    long_key = "x" * 200  # beyond BLAKE2b's 64-byte key: still keyed, still stable
    assert pseudonymize("a", long_key) == pseudonymize("a", long_key) != pseudonymize("a", "x" * 199)
    assert "user1" not in pseudonymize("user1", "k")


def test_forget_user_function_and_cli(tmp_path, capsys, monkeypatch):
    key = "forget-key"
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    alice, bob = pseudonymize("alice", key), pseudonymize("bob", key)
    with open_store(url) as store:
        store.upsert_users([User(id=alice), User(id=bob)])
        store.add_events([Event(event_id=f"a{i}", user_id=alice, item_id="p", type="view", timestamp=i) for i in range(3)]
                         + [Event(event_id="b0", user_id=bob, item_id="p", type="view", timestamp=1)])
        store.put_record("profile", alice, {"top": "p"})
        result = forget_user(store, "alice", key)
        assert result == {"user": alice, "rows_removed": 5, "events": 3, "users": 1, "records": 0 + 1}
        assert store.counts() == {"products": 0, "users": 1, "events": 1}
        # running serving processes forget her too (`Engine.follow`), and so do versions loaded later
        assert [entry for _, entry in changes.since(store, None)] == [{"op": "forget", "ids": [alice], "at": ANY}]

    monkeypatch.setenv("SHOPREC_PSEUDONYM_KEY", key)
    from shoprec.settings import get_settings

    get_settings.cache_clear()
    try:
        assert cli.main(["forget-user", "bob", "--store", url]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert json.loads(out[-1]) == {"user": bob, "rows_removed": 2, "events": 1, "users": 1, "records": 0}
        assert "bob" not in out[0].replace(bob, "")  # the raw id is not echoed
    finally:
        get_settings.cache_clear()
    with open_store(url) as store:
        assert store.counts() == {"products": 0, "users": 0, "events": 0}
        assert [entry["ids"] for _, entry in changes.since(store, None)] == [[alice], [bob]]
