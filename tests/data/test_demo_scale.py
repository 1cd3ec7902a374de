"""The demo generator at load-benchmark scale (slow tier: run with `pytest -m slow`)."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.data.demo import generate_demo


@pytest.mark.slow
def test_generates_a_million_events_over_a_hundred_thousand_products():
    shop = generate_demo(n_products=100_000, n_users=20_000, n_events=1_000_000, seed=7)
    assert len(shop.products) == 100_000 and len(shop.users) == 20_000
    assert len(shop) == 1_000_000
    c = shop.columns
    assert np.all(np.diff(c.timestamp) >= 0)
    assert c.item.max() < 100_000 and c.user.max() < 20_000
    # every leaf category is browsed and most items are seen at least once
    assert len(np.unique(shop.catalog.leaf[c.item[c.item >= 0]])) == len(shop.catalog.leaves)
    assert len(np.unique(c.item[c.item >= 0])) > 50_000
    first = next(shop.iter_events())
    assert first.event_id.endswith("0" * 7)
