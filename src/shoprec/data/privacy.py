"""Pseudonymisation of shopper ids (keyed BLAKE2b) and the right to be forgotten.

Raw user ids are replaced at ingest (and by the engine on every request), so the store, the
models, the artifacts and the logs only ever see pseudonyms. Without the key a pseudonym cannot
be linked back to the raw id; rotating the key unlinks every old pseudonym.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

PSEUDONYM_PREFIX = "u_"
_DIGEST_BYTES = 16  # 128 bits: collisions are negligible for any shop's user base


@lru_cache(maxsize=4)
def _key_bytes(key: str) -> bytes:
    raw = key.encode("utf-8")
    # BLAKE2b takes keys up to 64 bytes; longer keys are hashed down first (still secret, still keyed).
    return raw if len(raw) <= 64 else hashlib.blake2b(raw, digest_size=64).digest()


@lru_cache(maxsize=262_144)
def pseudonymize(user_id: str, key: str) -> str:
    """The stable pseudonym of `user_id` under `key`: "u_" + 32 hex chars of keyed BLAKE2b."""
    if not key:
        raise ValueError("pseudonym key must not be empty (set settings.pseudonym_key)")
    digest = hashlib.blake2b(str(user_id).encode("utf-8"), key=_key_bytes(key), digest_size=_DIGEST_BYTES)
    return PSEUDONYM_PREFIX + digest.hexdigest()


def forget_user(store: Any, raw_user_id: str, key: str) -> dict[str, Any]:
    """Delete everything the store keeps about one shopper, given their raw id.

    Returns {"user": pseudonym, "rows_removed": n, "events": n, "users": n, "records": n}
    (the per-table figures when the backend reports them). A change journal entry tells running
    serving processes to forget the shopper too (`shoprec.changes`).
    """
    from shoprec import changes

    pseudonym = pseudonymize(str(raw_user_id), key)
    detail = getattr(store, "forget_user_detail", None)
    if callable(detail):
        removed = dict(detail(pseudonym))
        total = sum(removed.values())
    else:
        total = int(store.forget_user(pseudonym))
        removed = {}
    changes.record(store, "forget", [pseudonym])
    return {"user": pseudonym, "rows_removed": total, **removed}
