"""Loaders for the S3-Rec and Home Depot formats: tiny fixtures here, the real files under `realdata`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shoprec.data.loaders import (
    DataFormatError,
    iter_s3rec_events,
    load_homedepot_products,
    load_judgments,
    load_s3rec,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture
def tiny_s3rec(tmp_path):
    # Item 5 appears only in the attribute file: it still counts as an item.
    (tmp_path / "Tiny.txt").write_text("1 3 1 3 2\n2 2 4\n\n3 1 1 1\n", encoding="utf-8")
    (tmp_path / "Tiny_item2attributes.json").write_text(
        json.dumps({"1": [1, 2], "2": [2], "3": [3, 1], "4": [], "5": [4]}), encoding="utf-8")
    return tmp_path


def test_load_s3rec_keeps_file_order_and_maps_ids(tiny_s3rec):
    data = load_s3rec(tiny_s3rec, "Tiny")
    assert data.n_users == 3 and data.n_items == 5 and data.n_interactions == 9
    assert [s.tolist() for s in data.sequences] == [[2, 0, 2, 1], [1, 3], [0, 0, 0]]
    assert list(data.user_ids) == ["1", "2", "3"]
    attrs = data.item_attributes
    assert attrs.shape == (5, 5)
    assert attrs[0].indices.tolist() == [1, 2] and attrs[2].indices.tolist() == [1, 3]
    assert attrs[3].nnz == 0 and attrs[4].indices.tolist() == [4]
    inter = data.to_interactions()
    assert [s.tolist() for s in inter.sequences] == [[2, 0, 2, 1], [1, 3], [0, 0, 0]]
    assert inter.item_ids[2] == "3"


def test_s3rec_without_attributes_and_errors(tmp_path):
    (tmp_path / "A.txt").write_text("1 2 3\n", encoding="utf-8")
    data = load_s3rec(tmp_path, "A")
    assert data.item_attributes is None and data.n_items == 3
    (tmp_path / "B.txt").write_text("1 2 3\n2 4 x\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"B.txt:2: item id 'x'"):
        load_s3rec(tmp_path, "B")
    (tmp_path / "C.txt").write_text("1 2\n2\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"C.txt:2: user '2' has no items"):
        load_s3rec(tmp_path, "C")
    with pytest.raises(FileNotFoundError):
        load_s3rec(tmp_path, "Missing")


def test_s3rec_events_are_purchases_with_increasing_times(tiny_s3rec):
    events = list(iter_s3rec_events(tiny_s3rec / "Tiny.txt"))
    assert len(events) == 9
    assert [e.item_id for e in events[:4]] == ["3", "1", "3", "2"]
    assert {e.type.value for e in events} == {"purchase"}
    times = [e.timestamp for e in events]
    assert all(a < b for a, b in zip(times, times[1:]))
    assert len({e.event_id for e in events}) == 9


def test_homedepot_products_and_judgments(tmp_path):
    (tmp_path / "products.csv").write_text(
        'product_uid,product_title\n100001,Simpson Strong-Tie 12-Gauge Angle\n100002,"BEHR 1-gal. #SC-141, Tugboat"\n',
        encoding="utf-8")
    (tmp_path / "judgments.csv").write_text(
        "query,product_uid,relevance\nangle bracket,100001,3\ndeck stain,100002,2.33\n", encoding="utf-8")
    products = load_homedepot_products(tmp_path / "products.csv")
    assert [(p.id, p.title) for p in products] == [("100001", "Simpson Strong-Tie 12-Gauge Angle"),
                                                   ("100002", "BEHR 1-gal. #SC-141, Tugboat")]
    assert load_judgments(tmp_path / "judgments.csv") == [("angle bracket", "100001", 3.0), ("deck stain", "100002", 2.33)]
    (tmp_path / "bad.csv").write_text("query,product_uid,relevance\nsaw,1,high\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad.csv:2: relevance"):
        load_judgments(tmp_path / "bad.csv")


@pytest.mark.realdata
@pytest.mark.parametrize("name, users, items, interactions", [
    ("Beauty", 22_363, 12_101, 198_502),
    ("Sports_and_Outdoors", 35_598, 18_357, 296_337),
    ("Toys_and_Games", 19_412, 11_924, 167_597),
])
def test_real_s3rec_counts(name, users, items, interactions):
    if not (DATA / "amazon" / f"{name}.txt").exists():
        pytest.skip(f"{DATA / 'amazon'} not present")
    data = load_s3rec(DATA / "amazon", name)
    assert (data.n_users, data.n_items, data.n_interactions) == (users, items, interactions)
    assert data.item_attributes.shape[0] == items
    assert min(int(s.min()) for s in data.sequences) == 0
    assert max(int(s.max()) for s in data.sequences) == items - 1
    first_line = (DATA / "amazon" / f"{name}.txt").read_text().split("\n", 1)[0].split()
    assert data.sequences[0].tolist() == (np.array(first_line[1:], int) - 1).tolist()


@pytest.mark.realdata
def test_real_homedepot_counts():
    if not (DATA / "homedepot" / "products.csv").exists():
        pytest.skip(f"{DATA / 'homedepot'} not present")
    assert len(load_homedepot_products(DATA / "homedepot" / "products.csv")) == 54_667
    judgments = load_judgments(DATA / "homedepot" / "judgments_dev.csv")
    assert len(judgments) == 51_991
    assert all(1.0 <= r <= 3.0 for _, _, r in judgments)
