"""Store tables -> training data: events and catalog become `Interactions` in index space.

Vectorised with pyarrow compute and numpy (no per-event Python loop), so the step stays a function
of tables that a Spark job could run the same way. Only the catalog side (one pass over products,
to parse category paths) is plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from shoprec.data.schemas import EVENT_WEIGHTS
from shoprec.recommend.dataset import Interactions


def events_to_interactions(
    events: pa.Table,
    products: pa.Table | None = None,
    weights: Mapping[str, float] = EVENT_WEIGHTS,
) -> Interactions:
    """Events (store.read_events() columns) and catalog (store.read_products()) as `Interactions`.

    - Events whose type weighs 0 (impressions, searches), of unknown type or without an item are
      dropped; the rest get `weights[type]` (remove_from_cart keeps its negative weight).
    - Users are indexed in order of first appearance; items are every catalog product in catalog
      order (so never-interacted products still have an index), then items seen only in events.
    - Arrays are grouped by user, each user's events in the table's order (the store returns
      (timestamp, insertion) order; ties are never re-sorted).
    - With a catalog: item_texts (title | brand | category path | description, as `Product.text()`)
      and item_attributes, an (n_items, n_attributes) 0/1 CSR over category path prefixes and
      brands; their names are in meta["attribute_names"].
    """
    kinds = pa.array(list(weights), pa.string())
    table = np.asarray([float(weights[k]) for k in weights], dtype=np.float32)
    kind_index = pc.index_in(events.column("type").cast(pa.string()), value_set=kinds)
    known = pc.is_valid(kind_index)
    weight = np.zeros(events.num_rows, np.float32)
    known_np = known.to_numpy(zero_copy_only=False)
    weight[known_np] = table[pc.drop_null(kind_index).to_numpy()]
    item_col = events.column("item_id").cast(pa.string())
    has_item = pc.and_(pc.is_valid(item_col), pc.not_equal(pc.fill_null(item_col, ""), ""))
    keep = np.asarray(has_item.to_numpy(zero_copy_only=False), bool) & (weight != 0)
    mask = pa.array(keep)

    users = pc.filter(events.column("user_id").cast(pa.string()), mask)
    items = pc.filter(item_col, mask)
    if "timestamp" in events.column_names:
        timestamps = pc.filter(events.column("timestamp"), mask).to_numpy(zero_copy_only=False).astype(np.float64)
    else:
        timestamps = None
    weight = weight[keep]

    user_ids = pc.unique(users)  # first-appearance order
    user_index = pc.index_in(users, value_set=user_ids).to_numpy(zero_copy_only=False).astype(np.int32)

    catalog_ids = _catalog_ids(products)
    event_items = pc.unique(items)
    new_items = pc.filter(event_items, pc.invert(pc.is_in(event_items, value_set=catalog_ids)))
    item_ids = pa.concat_arrays([catalog_ids, new_items.combine_chunks() if isinstance(new_items, pa.ChunkedArray) else new_items])
    item_index = pc.index_in(items, value_set=item_ids).to_numpy(zero_copy_only=False).astype(np.int32)

    order = np.argsort(user_index, kind="stable")  # group by user, keep each user's event order
    n_items = len(item_ids)
    texts, attributes, attribute_names = _catalog_side(products, n_items)
    return Interactions(
        n_users=len(user_ids),
        n_items=n_items,
        users=user_index[order],
        items=item_index[order],
        weights=weight[order],
        timestamps=None if timestamps is None else timestamps[order],
        user_ids=np.asarray(user_ids.to_numpy(zero_copy_only=False)).astype(str),
        item_ids=np.asarray(item_ids.to_numpy(zero_copy_only=False)).astype(str),
        item_attributes=attributes,
        item_texts=texts,
        meta={
            "attribute_names": attribute_names,
            "events_in": events.num_rows,
            "events_dropped": int(events.num_rows - keep.sum()),
            "catalog_items": len(catalog_ids),
        },
    )


def _catalog_ids(products: pa.Table | None) -> pa.Array:
    if products is None or products.num_rows == 0:
        return pa.array([], pa.string())
    ids = products.column("id").cast(pa.string()).combine_chunks()
    if pc.count_distinct(ids).as_py() != len(ids):
        raise ValueError("products table has repeated ids")
    return ids


def _category_lists(products: pa.Table) -> list[list[str]]:
    import orjson

    column = products.column("category")
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return [list(c or []) for c in column.to_pylist()]
    return [orjson.loads(c) if c else [] for c in column.to_pylist()]


def _catalog_side(products: pa.Table | None, n_items: int) -> tuple[list[str] | None, sp.csr_matrix | None, list[str]]:
    """(item texts, item-attribute CSR, attribute names) for the catalog rows (rows past them stay empty)."""
    if products is None or products.num_rows == 0:
        return None, None, []

    def column(name: str) -> list[Any]:
        return products.column(name).to_pylist() if name in products.column_names else [""] * products.num_rows

    titles, brands, descriptions = column("title"), column("brand"), column("description")
    categories = _category_lists(products)
    texts = [
        " | ".join(p for p in (title or "", brand or "", " > ".join(path), description or "") if p)
        for title, brand, path, description in zip(titles, brands, categories, descriptions)
    ]
    texts += [""] * (n_items - len(texts))

    names: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for row, (path, brand) in enumerate(zip(categories, brands)):
        labels = [f"category:{' > '.join(path[:depth])}" for depth in range(1, len(path) + 1)]
        if brand:
            labels.append(f"brand:{brand}")
        for label in labels:
            rows.append(row)
            cols.append(names.setdefault(label, len(names)))
    matrix = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=(n_items, len(names)),
    )
    return texts, matrix, list(names)
