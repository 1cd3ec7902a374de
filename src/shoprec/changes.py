"""The change journal: catalog, rules and privacy changes every serving process must apply.

Each serving process (`--workers N`, or several machines) holds its own copy of the served
version; the store is the one place they all write to. Events already sit in the store in
insertion order (`Store.events_after`). Catalog upserts and deletes, edited merchandising rules
and forgotten users leave one journal entry each, a store record of kind `change` whose key sorts
by time; every process applies the entries it has not seen yet (`Engine.follow`), and a newly
loaded version replays the entries written since its build read the store. A build prunes entries
that every version now contains.

An entry holds product ids or a user's pseudonym (never a raw user id) until that pruning.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

KIND = "change"
OPS = ("upsert", "delete", "forget", "rules")
# Entries of concurrent writers may become visible out of key order (PostgreSQL); a follower
# re-reads this far back and skips what it applied.
LOOKBACK_NS = 5_000_000_000


def key_at(epoch_s: float) -> str:
    """The smallest key written at or after `epoch_s` (keys are `<ns since epoch, 20 digits>-<random>`)."""
    return f"{max(int(epoch_s * 1e9), 0):020d}"


def record(store: Any, op: str, ids: list[str]) -> str:
    """Write one entry; returns its key."""
    if op not in OPS:
        raise ValueError(f"unknown change {op!r}; one of {', '.join(OPS)}")
    now = time.time_ns()
    key = f"{now:020d}-{uuid.uuid4().hex[:12]}"
    store.put_record(KIND, key, {"op": op, "ids": [str(i) for i in ids], "at": now / 1e9})
    return key


def since(store: Any, after_key: str | None) -> list[tuple[str, dict[str, Any]]]:
    """Entries with keys after `after_key` (all when None), oldest first."""
    entries = store.list_records(KIND, after_key=after_key)
    return sorted(entries, key=lambda entry: entry[0])


def prune(store: Any, before_epoch_s: float) -> int:
    """Delete entries written before `before_epoch_s`; returns how many."""
    bound = key_at(before_epoch_s)
    old = [key for key, _ in store.list_records(KIND) if key < bound]
    for key in old:
        store.delete_record(KIND, key)
    return len(old)


class Follower:
    """Which events and journal entries one process has applied; hands out the rest in order."""

    def __init__(self, store: Any, event_seq: int, journal_key: str | None, event_lookback: int = 1000):
        self.store = store
        self.event_seq = int(event_seq)
        self.journal_key = journal_key
        # SQLite commits in sequence order; concurrent PostgreSQL writers may not, so look back.
        self.event_lookback = 0 if getattr(store, "seq_in_commit_order", True) else event_lookback
        self._seen_events: dict[str, int] = {}
        # Entries up to `journal_key` count as applied, also those in the look-back window.
        self._seen_entries = {key for key, _ in since(store, self._floor())} if journal_key else set()
        self._seen_entries = {key for key in self._seen_entries if key <= journal_key}

    def _floor(self) -> str | None:
        """Where the next read of the journal starts: LOOKBACK_NS before the newest key seen."""
        if self.journal_key is None:
            return None
        return key_at((int(self.journal_key.split("-", 1)[0]) - LOOKBACK_NS) / 1e9)

    def new_events(self, limit: int = 10_000) -> list[tuple[int, str, str, str | None, str]]:
        """Events stored since the last call, as (seq, event_id, user_id, item_id, type) rows."""
        out = []
        while True:
            rows = self.store.events_after(max(self.event_seq - self.event_lookback, 0), limit)
            fresh = [row for row in rows if row[1] not in self._seen_events] if self.event_lookback else rows
            out.extend(fresh)
            if rows:
                self.event_seq = max(self.event_seq, int(rows[-1][0]))
            if self.event_lookback:
                self._seen_events.update((row[1], int(row[0])) for row in fresh)
                floor = self.event_seq - self.event_lookback
                if len(self._seen_events) > 2 * self.event_lookback:
                    self._seen_events = {e: s for e, s in self._seen_events.items() if s > floor}
            if len(rows) < limit or not fresh:
                return out

    def new_entries(self) -> list[tuple[str, dict[str, Any]]]:
        """Journal entries written since the last call, oldest first."""
        fresh = [(key, value) for key, value in since(self.store, self._floor()) if key not in self._seen_entries]
        if fresh:
            self.journal_key = max(self.journal_key or "", fresh[-1][0])
            self._seen_entries.update(key for key, _ in fresh)
            floor = self._floor()
            self._seen_entries = {key for key in self._seen_entries if key >= floor}
        return fresh
