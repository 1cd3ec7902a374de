"""A CSV with exactly 10 deliberately broken rows: good rows load, exactly those 10 are reported.

Each broken row has one defect of a different kind; the expected (line, field) pairs are written
next to the rows, so a line-number or field-attribution mistake fails the test.
"""

from __future__ import annotations

import io
import json

import pytest

from shoprec.data.ingest import ingest_file
from shoprec.data.store import open_store
from shoprec.settings import Settings

EVENT_HEADER = "event_id,user_id,session_id,item_id,type,value,quantity,price,query,timestamp,context"
# (csv line, expected field or None for a good row). The file's line 1 is the header.
EVENT_ROWS = [
    ('e01,alice,s1,p1,view,,,,,2024-03-01T10:00:00Z,"{""device"": ""mobile""}"', None),
    ("e02,alice,s1,p1,purchase,,1,not-a-price,,2024-03-01T10:01:00Z,", "price"),            # bad price
    (",,s1,p2,view,,,,,2024-03-01T10:02:00Z,", "user_id"),                                  # missing id
    ("e04,bob,s2,p2,view,,,,,yesterday at noon,", "timestamp"),                             # bad timestamp
    ("e05,bob,s2,p2,teleport,,,,,2024-03-01T10:04:00Z,", "type"),                           # unknown type
    ('e06,bob,s2,p3,click,,,,,2024-03-01T10:05:00Z,"{""device"": mobile}"', "context"),    # malformed JSON
    ("e07,carol,s3,p3,add_to_cart,,2,4.5,,2024-03-01T10:06:00Z,", None),
    ("e08,carol,s3,p3,add_to_cart,,-2,,,2024-03-01T10:07:00Z,", "quantity"),                # negative quantity
    ("e09,carol,s3,,view,,,,,2024-03-01T10:08:00Z,", "item_id"),                            # view without item
    ("e10,carol,s3,p4,rating,,,,,2024-03-01T10:09:00Z,", "value"),                          # rating without value
    ("e11,dave,s4,p4,view,,,,,2024-03-01T10:10:00Z", "<row>"),                              # a field short
    ("e12,dave,s4,,search,,,,,2024-03-01T10:11:00Z,", "query"),                             # search without query
    ("e13,dave,s4,,search,,,,red shoes,1709287900,", None),
    ("e14,erin,s5,p5,rating,4,,,,1709288000000,", None),
]

PRODUCT_HEADER = ("id,title,description,category,brand,price,currency,attributes,image_url,language,available,"
                  "rating,created_at,updated_at")
PRODUCT_ROWS = [
    ('p1,Red Shoe,"A shoe.\nTwo lines of description.",Fashion > Shoes,Acme,19.99,USD,"{""color"": ""red""}",,en,true,4.5,2024-01-01,',
     None),
    ("p2,Blue Shoe,,Fashion > Shoes,Acme,twelve,USD,,,en,true,,,", "price"),                 # bad price
    (",Nameless,,Fashion,Acme,5,USD,,,en,true,,,", "id"),                                    # missing id
    ('p4,Hat,,Fashion > Hats,Hatco,9,USD,"{color: red}",,en,true,,,', "attributes"),         # malformed JSON
    ("p5,Scarf,,Fashion,Acme,9,US Dollars,,,en,true,,,", "currency"),                        # bad currency
    ("p6,Belt,,Fashion,Acme,9,USD,,,en,true,7.5,,", "rating"),                               # rating > 5
    ("p7,Sock,,Fashion,Acme,-1,USD,,,en,true,,,", "price"),                                  # negative price
    ("p8,,,Fashion,Acme,3,USD,,,en,true,,,", "title"),                                       # missing title
    ("p9,Glove,,Fashion,Acme,3,USD,,,en,true,,the day before,", "created_at"),               # bad time
    ("p10,Boot,,Fashion,Acme,3,USD,,,en,perhaps,,,", "available"),                           # bad boolean
    ("p11,Cap,,Fashion,Acme,3,USD,,,en,true,,,,extra", "<row>"),                             # a field too many
    ("p12,Tie,,,Acme,,USD,,,en,false,,,", None),                                             # no price, no category
    ("p13,Coat,,Fashion > Coats,Acme,99,eur,,,de,1,,1709287900,", None),
]


def _write(path, header, rows):
    text = header + "\n" + "\n".join(r for r, _ in rows) + "\n"
    path.write_text(text, encoding="utf-8")
    # Physical line where each row starts (a quoted cell may span lines).
    starts, line = [], 2
    for row, _ in rows:
        starts.append(line)
        line += row.count("\n") + 1
    return starts


@pytest.mark.parametrize("kind, header, rows", [("events", EVENT_HEADER, EVENT_ROWS),
                                                ("catalog", PRODUCT_HEADER, PRODUCT_ROWS)])
def test_exactly_ten_broken_rows_are_reported_and_the_rest_load(tmp_path, kind, header, rows):
    source = tmp_path / f"{kind}.csv"
    starts = _write(source, header, rows)
    expected = [(line, field) for line, (_, field) in zip(starts, rows) if field is not None]
    assert len(expected) == 10
    good = len(rows) - 10

    settings = Settings(store_url=f"sqlite:///{tmp_path / 'shop.db'}")
    err = io.StringIO()
    report = ingest_file(source, kind, settings=settings, err=err, max_shown=5)

    assert report.rows_read == len(rows)
    assert report.rejected == 10
    assert report.inserted == good
    with open_store(settings.store_url) as store:
        assert store.counts()["events" if kind == "events" else "products"] == good

    rejects = [json.loads(line) for line in (tmp_path / f"{kind}.csv.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rejects] == expected
    assert all(r["reason"] and r["raw"] for r in rejects)

    shown = [line for line in err.getvalue().splitlines() if line.startswith(str(source))]
    assert shown == [f"{source}:{line}: {field}: {r['reason']}" for (line, field), r in zip(expected[:5], rejects[:5])]
    assert "5 more rejected rows" in err.getvalue()


def test_catalog_report_counts_missing_price_and_category(tmp_path):
    source = tmp_path / "catalog.csv"
    _write(source, PRODUCT_HEADER, PRODUCT_ROWS)
    report = ingest_file(source, "catalog", settings=Settings(store_url=f"sqlite:///{tmp_path / 'shop.db'}"),
                         err=io.StringIO())
    assert (report.missing_price, report.missing_category) == (1, 1)  # only p12 among the good rows
    with open_store(f"sqlite:///{tmp_path / 'shop.db'}") as store:
        p1, p13 = store.get_products(["p1", "p13"])
    assert p1.description == "A shoe. Two lines of description."
    assert p1.attributes == {"color": "red"} and p1.category == ["Fashion", "Shoes"]
    assert p13.currency == "EUR" and p13.price == 99.0
