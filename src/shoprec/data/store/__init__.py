"""The store: one interface, backends chosen by URL (`sqlite:///path.db`, `postgresql://...`)."""

from __future__ import annotations

from shoprec.data.store.base import Store


def open_store(url: str | None = None) -> Store:
    """Open the store at `url` (default: settings.store_url) and make sure its schema exists."""
    if url is None:
        from shoprec.settings import get_settings

        url = get_settings().store_url
    if url.startswith("sqlite:"):
        from shoprec.data.store.sqlite import SQLiteStore

        return SQLiteStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        from shoprec.data.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///path.db or postgresql://user@host/db")


__all__ = ["Store", "open_store"]
