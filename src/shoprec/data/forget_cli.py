"""`shoprec forget-user ID`: delete one shopper's events, user row and records from the store.

The raw id is pseudonymised with settings.pseudonym_key first (the store only holds pseudonyms).
Running serving processes forget them within a second too (through the change journal, as after
`DELETE /v1/admin/users/{id}`), and so does every version they load later.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user_id", help="the shopper's raw id (as the shop knows it)")
    parser.add_argument("--store", help="store URL (default: settings.store_url)")


def run(args: argparse.Namespace) -> int:
    from shoprec.data.privacy import forget_user
    from shoprec.data.store import open_store
    from shoprec.settings import get_settings

    settings = get_settings()
    with open_store(args.store or settings.store_url) as store:
        result = forget_user(store, args.user_id, settings.pseudonym_key)
    detail = ", ".join(f"{result[k]} {k}" for k in ("events", "users", "records") if k in result)
    print(f"forgot user {result['user']}: removed {result['rows_removed']} rows" + (f" ({detail})" if detail else ""))
    print(json.dumps(result))
    return 0
