"""The store interface every backend implements (and the shared store test suite checks).

Reads for builds are columnar (pyarrow Tables), so build steps stay functions of tables.
User ids arriving here are already pseudonymised (see `shoprec.data.privacy`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from shoprec.data.schemas import Event, Product, User


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # Products only: the ids inserted or updated (what serving processes must index again).
    changed_ids: list[str] = field(default_factory=list)


class Store(ABC):
    """Persistent catalog, users, events and small key-value records (rules, experiments, runs)."""

    url: str

    # -- catalog ---------------------------------------------------------------------------
    @abstractmethod
    def upsert_products(self, products: Iterable[Product]) -> UpsertResult:
        """Insert or update products by id; a changed price appends to the price history."""

    @abstractmethod
    def delete_products(self, ids: Iterable[str]) -> int:
        """Delete products by id; returns how many existed."""

    @abstractmethod
    def get_products(self, ids: Iterable[str]) -> list[Product]:
        """The products with these ids (missing ids are skipped), in the order asked."""

    @abstractmethod
    def read_products(self) -> pa.Table:
        """All products as a table (attributes and category as JSON text columns)."""

    @abstractmethod
    def price_history(self, product_id: str) -> list[tuple[Any, float | None]]:
        """(changed_at, price) pairs, oldest first."""

    # -- users and events --------------------------------------------------------------------
    @abstractmethod
    def upsert_users(self, users: Iterable[User]) -> UpsertResult: ...

    @abstractmethod
    def add_events(self, events: Iterable[Event]) -> int:
        """Durably append events (committed before returning); duplicates by event_id are ignored.

        Returns the number of new events stored."""

    @abstractmethod
    def read_events(self, since: Any | None = None) -> pa.Table:
        """All events (optionally since a timestamp), in (timestamp, insertion) order."""

    @abstractmethod
    def last_event_seq(self) -> int:
        """The insertion sequence number of the newest stored event (0 when there is none)."""

    @abstractmethod
    def events_after(self, seq: int, limit: int = 10_000) -> list[tuple[int, str, str, str | None, str]]:
        """Up to `limit` events stored after sequence number `seq`, in insertion order, as
        (seq, event_id, user_id, item_id, type) rows: what serving processes follow."""

    # Whether insertion order equals commit order: one writer at a time (SQLite) makes it so; with
    # concurrent writers (PostgreSQL) a lower sequence number can commit after a higher one is read.
    seq_in_commit_order: bool = True

    @abstractmethod
    def forget_user(self, user_id: str) -> int:
        """Delete the user's events, profile and user row everywhere; returns rows removed."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """{"products": n, "users": n, "events": n}."""

    # -- small records: merchandising rules, experiments, registry runs -----------------------
    @abstractmethod
    def put_record(self, kind: str, key: str, value: dict[str, Any]) -> None: ...

    @abstractmethod
    def get_record(self, kind: str, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_records(self, kind: str, after_key: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(key, value) pairs of one kind, oldest first; with `after_key`, only keys sorting after it."""

    @abstractmethod
    def delete_record(self, kind: str, key: str) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
