"""events_to_interactions: store tables -> index-space training data."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from shoprec.data.interactions import events_to_interactions
from shoprec.data.schemas import EVENT_WEIGHTS, Event, Product
from shoprec.data.store import open_store


def events_table(rows):
    cols = ["event_id", "user_id", "session_id", "item_id", "type", "value", "quantity", "price", "query",
            "timestamp", "context"]
    data = {c: [] for c in cols}
    for i, (user, item, kind, ts) in enumerate(rows):
        for c, v in zip(cols, [f"e{i}", user, "", item, kind, None, 1, None, "q" if item is None else None, float(ts), "{}"]):
            data[c].append(v)
    return pa.table(data)


def products_table(rows):
    return pa.table({
        "id": [r[0] for r in rows],
        "title": [r[1] for r in rows],
        "description": [r[4] if len(r) > 4 else "" for r in rows],
        "category": [json.dumps(r[2]) for r in rows],
        "brand": [r[3] for r in rows],
    })


CATALOG = products_table([
    ("p1", "Lamp", ["Home", "Lighting"], "Lumo", "A desk lamp"),
    ("p2", "Chair", ["Home", "Furniture"], ""),
    ("p3", "Never bought", ["Garden"], "Lumo"),
])


def test_types_weights_order_and_item_space():
    events = events_table([
        ("ub", "p2", "view", 10),
        ("ua", "p1", "impression", 11),      # dropped: weight 0
        ("ua", "p1", "click", 12),
        ("ub", None, "search", 12),          # dropped: search
        ("ub", "p1", "purchase", 12),        # same time as the click: keeps table order
        ("ua", "p9", "add_to_cart", 13),     # not in the catalog: appended after catalog items
        ("ua", "p2", "remove_from_cart", 14),
        ("ua", "p1", "teleport", 15),        # unknown type: dropped
    ])
    data = events_to_interactions(events, CATALOG)
    assert list(data.user_ids) == ["ub", "ua"]              # first appearance
    assert list(data.item_ids) == ["p1", "p2", "p3", "p9"]  # catalog order, then event-only items
    assert (data.n_users, data.n_items, len(data)) == (2, 4, 5)
    # Grouped by user, each user's events in table order.
    assert data.users.tolist() == [0, 0, 1, 1, 1]
    assert data.items.tolist() == [1, 0, 0, 3, 1]
    expected = [EVENT_WEIGHTS[k] for k in ("view", "purchase", "click", "add_to_cart", "remove_from_cart")]
    assert data.weights.tolist() == expected
    assert data.timestamps.tolist() == [10, 12, 12, 13, 14]
    assert [s.tolist() for s in data.sequences] == [[1, 0], [0, 3, 1]]
    assert data.meta["events_dropped"] == 3


def test_item_texts_and_attributes_from_the_catalog():
    data = events_to_interactions(events_table([("u", "p1", "view", 1), ("u", "p9", "view", 2)]), CATALOG)
    p1 = Product(id="p1", title="Lamp", category=["Home", "Lighting"], brand="Lumo", description="A desk lamp")
    assert data.item_texts[0] == p1.text()
    assert data.item_texts[1] == "Chair | Home > Furniture"
    assert data.item_texts[3] == ""                         # p9: not in the catalog
    names = data.meta["attribute_names"]
    attrs = data.item_attributes
    assert attrs.shape == (4, len(names))

    def labels(i):
        return sorted(names[j] for j in attrs[i].indices)

    assert labels(0) == ["brand:Lumo", "category:Home", "category:Home > Lighting"]
    assert labels(1) == ["category:Home", "category:Home > Furniture"]
    assert labels(2) == ["brand:Lumo", "category:Garden"]
    assert labels(3) == []
    assert set(attrs.data.tolist()) == {1.0}


def test_without_catalog_and_empty():
    data = events_to_interactions(events_table([("u", "p2", "view", 1), ("u", "p1", "view", 2)]))
    assert list(data.item_ids) == ["p2", "p1"] and data.item_texts is None and data.item_attributes is None
    empty = events_to_interactions(events_table([]), CATALOG)
    assert (empty.n_users, empty.n_items, len(empty)) == (0, 3, 0)


def test_custom_weights():
    data = events_to_interactions(events_table([("u", "p1", "view", 1), ("u", "p1", "impression", 2)]),
                                  weights={"view": 0.5, "impression": 0.1})
    assert data.weights.tolist() == pytest.approx([0.5, 0.1])


def test_from_the_store(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'shop.db'}") as store:
        store.upsert_products([Product(id="a", title="A"), Product(id="b", title="B", category=["X"])])
        store.add_events([
            Event(event_id="1", user_id="u1", item_id="b", type="view", timestamp=5),
            Event(event_id="2", user_id="u2", item_id="a", type="purchase", timestamp=5),
            Event(event_id="3", user_id="u1", item_id="a", type="add_to_cart", timestamp=4),
        ])
        data = events_to_interactions(store.read_events(), store.read_products())
    assert list(data.user_ids) == ["u1", "u2"]
    assert [s.tolist() for s in data.sequences] == [[0, 1], [0]]  # u1: a (t=4) then b (t=5)
    assert np.allclose(data.csr.toarray(), [[3.0, 1.0], [5.0, 0.0]])
