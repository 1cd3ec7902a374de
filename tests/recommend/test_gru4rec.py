"""GRU4Rec: the shared contract on the planted fixture, plus recurrence-specific checks."""

from __future__ import annotations

import numpy as np
import torch
from mixin import RecommenderTestMixin, planted_split

from shoprec.recommend.dataset import Interactions
from shoprec.recommend.gru4rec import GRU4Rec

FAST = {"dim": 32, "hidden": 32, "epochs": 12, "max_len": 20, "dropout": 0.1, "learning_rate": 5e-3,
        "batch_size": 64, "patience": 4, "num_threads": 1}


class TestGRU4RecContract(RecommenderTestMixin):
    model_name = "gru4rec"
    config = FAST
    min_hr10 = 0.6


def test_recurrence_is_causal_and_ignores_padding() -> None:
    split = planted_split()
    model = GRU4Rec(**{**FAST, "epochs": 1}).fit(split.train)
    network = model.network.eval()
    windows = torch.tensor([[0, 0, 0, 3, 7, 11, 15], [0, 0, 0, 0, 0, 3, 7]])
    changed = windows.clone()
    changed[0, -1] = 42
    with torch.no_grad():
        table = network.items()
        before, after = network.encode(windows, table), network.encode(changed, table)
        narrow = network.encode(torch.tensor([[3, 7]]), table)
    torch.testing.assert_close(before[0, :-1], after[0, :-1])
    assert not torch.allclose(before[0, -1], after[0, -1])
    # the same two items give the same state whatever the padding in front of them
    torch.testing.assert_close(before[1, -1], narrow[0, -1])
    assert torch.count_nonzero(before[1, :5]) == 0  # padding positions carry no state


def test_score_follows_the_latest_item() -> None:
    split = planted_split()
    model = GRU4Rec(**FAST).fit(split.train, valid=split.valid)
    history = Interactions.from_sequences([[0, 1, 2, 3], [0, 1, 2, 3, 80, 81, 82]], split.train.n_items)
    top = model.recommend(np.arange(2), k=5, history=history)[0]
    # the walk just moved to cluster 3: its successor leads, and the lists differ
    assert 83 in top[1][:3] and 83 not in top[0]
