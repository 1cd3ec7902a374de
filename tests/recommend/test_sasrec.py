"""SASRec: the shared contract on the planted fixture, plus attention-specific checks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from mixin import RecommenderTestMixin, planted_split

from shoprec.evaluation.protocols import evaluate_holdout
from shoprec.recommend.base import Recommender
from shoprec.recommend.dataset import Interactions
from shoprec.recommend.sasrec import SASRec

FAST = {"dim": 32, "epochs": 12, "max_len": 20, "dropout": 0.1, "attention_dropout": 0.1,
        "learning_rate": 5e-3, "batch_size": 64, "patience": 4, "num_threads": 1}


class TestSASRecContract(RecommenderTestMixin):
    model_name = "sasrec"
    config = FAST
    min_hr10 = 0.6


@pytest.fixture(scope="module")
def fitted() -> SASRec:
    split = planted_split()
    return SASRec(**FAST).fit(split.train, valid=split.valid)


def test_scores_have_one_row_per_user_and_one_column_per_item(fitted: SASRec) -> None:
    split = planted_split()
    scores = fitted.score(np.array([0, 5, 9]), split.test_history)
    assert scores.shape == (3, split.train.n_items) and scores.dtype == np.float32
    assert np.isfinite(scores).all()


def test_future_items_do_not_change_earlier_positions(fitted: SASRec) -> None:
    network = fitted.network.eval()
    windows = torch.tensor([[0, 0, 3, 7, 11, 15, 19, 23]])
    changed = windows.clone()
    changed[0, -1] = 42  # a different last item
    with torch.no_grad():
        table = network.items()
        before, after = network.encode(windows, table), network.encode(changed, table)
    torch.testing.assert_close(before[:, :-1], after[:, :-1])
    assert not torch.allclose(before[:, -1], after[:, -1])


def test_padding_does_not_change_the_result(fitted: SASRec) -> None:
    network = fitted.network.eval()
    items = [3, 7, 11, 15]
    narrow = torch.tensor([items])
    wide = torch.tensor([[0] * (fitted.config.max_len - len(items)) + items])
    with torch.no_grad():
        table = network.items()
        torch.testing.assert_close(network.encode(narrow, table)[:, -1], network.encode(wide, table)[:, -1])


def test_score_uses_only_the_latest_max_len_items() -> None:
    split = planted_split()
    model = SASRec(**{**FAST, "max_len": 4, "epochs": 2}).fit(split.train)
    base = [1, 2, 3, 4, 5, 6]
    older_changed = [40, 41, 3, 4, 5, 6]  # differs only outside the last 4
    latest_changed = [1, 2, 3, 4, 5, 60]
    history = Interactions.from_sequences([base, older_changed, latest_changed], split.train.n_items)
    scores = model.score(np.arange(3), history)
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(scores[0], scores[2])


def test_next_item_of_the_planted_walk_ranks_high(fitted: SASRec) -> None:
    split = planted_split()
    # the fixture walks item t -> t + 1 inside a 25-item cluster
    history = Interactions.from_sequences([[0, 1, 2, 3], [50, 51, 52]], split.train.n_items)
    top = fitted.recommend(np.arange(2), k=3, history=history)[0]
    assert 4 in top[0] and 53 in top[1]


def test_progress_lines_report_epoch_loss_and_validation(caplog: pytest.LogCaptureFixture) -> None:
    split = planted_split()
    with caplog.at_level(logging.INFO, logger="shoprec.recommend.sasrec"):
        SASRec(**{**FAST, "epochs": 2}).fit(split.train, valid=split.valid)
    lines = [r.getMessage() for r in caplog.records if "epoch=" in r.getMessage()]
    assert len(lines) == 2
    assert all("loss=" in line and "valid_ndcg10=" in line and "time=" in line for line in lines)


@pytest.mark.parametrize("loss", ["bce", "sampled"])
def test_other_losses_learn_the_walk(loss: str) -> None:
    split = planted_split()
    model = SASRec(**{**FAST, "loss": loss, "negatives": 8 if loss == "bce" else 64, "epochs": 15}).fit(split.train, valid=split.valid)
    assert evaluate_holdout(model, split.test)["hr10"] >= 0.5


def test_full_softmax_over_a_large_catalogue_falls_back_to_sampled_and_still_learns(monkeypatch) -> None:
    import torch.nn.functional as F

    split = planted_split()
    widths = []
    cross_entropy = F.cross_entropy
    monkeypatch.setattr(F, "cross_entropy", lambda logits, *a, **kw: widths.append(logits.shape[1]) or cross_entropy(logits, *a, **kw))
    model = SASRec(**{**FAST, "loss": "ce", "ce_max_items": 10, "negatives": 64, "epochs": 15}).fit(split.train, valid=split.valid)
    assert widths and set(widths) == {1 + 64}  # the positive and 64 shared negatives, never every item
    assert evaluate_holdout(model, split.test)["hr10"] >= 0.5


def test_gated_ligr_blocks_learn_the_walk_and_survive_save_load(tmp_path) -> None:
    split = planted_split()
    model = SASRec(**{**FAST, "block": "ligr", "ffn_factor": 2}).fit(split.train, valid=split.valid)
    assert evaluate_holdout(model, split.test)["hr10"] >= 0.6
    model.save(tmp_path / "ligr")
    loaded = Recommender.load(tmp_path / "ligr")
    users = np.arange(5)
    np.testing.assert_allclose(loaded.score(users, split.test.history), model.score(users, split.test.history), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_both_training_precisions_learn_the_walk(precision: str) -> None:
    split = planted_split()
    model = SASRec(**{**FAST, "precision": precision}).fit(split.train, valid=split.valid)
    assert model.fit_report["precision"] == precision
    assert evaluate_holdout(model, split.test)["hr10"] >= 0.6
    # training arithmetic only: the served scores are float32
    assert model.score(np.arange(3), split.test.history).dtype == np.float32


def test_weight_averaging_keeps_the_averaged_weights_and_learns_the_walk() -> None:
    split = planted_split()
    raw = SASRec(**{**FAST, "ema_decay": None}).fit(split.train)
    averaged = SASRec(**{**FAST, "ema_decay": 0.9}).fit(split.train)
    raw_ids = raw.network.items.ids.weight
    averaged_ids = averaged.network.items.ids.weight
    assert not torch.allclose(raw_ids, averaged_ids)
    assert evaluate_holdout(averaged, split.test)["hr10"] >= 0.6


def test_refit_trains_the_selected_epochs_on_training_plus_validation_targets(caplog: pytest.LogCaptureFixture) -> None:
    split = planted_split()
    with caplog.at_level(logging.INFO, logger="shoprec.recommend.sasrec"):
        model = SASRec(**{**FAST, "refit_with_valid": True}).fit(split.train, valid=split.valid)
    report = model.fit_report
    assert 0 < report["best_epoch"] <= report["epochs"] and report["refit_epochs"] == report["best_epoch"]
    refit_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sasrec refit epoch=")]
    assert len(refit_lines) == report["best_epoch"]
    assert evaluate_holdout(model, split.test)["hr10"] >= 0.6
    # without validation targets there is nothing to select or refit on
    assert "refit_epochs" not in SASRec(**{**FAST, "epochs": 2, "refit_with_valid": True}).fit(split.train).fit_report


def test_attributes_are_used_only_when_asked_for() -> None:
    split = planted_split()
    assert SASRec(**{**FAST, "epochs": 1}).fit(split.train).network.items.has_attributes
    assert not SASRec(**{**FAST, "epochs": 1, "use_attributes": False}).fit(split.train).network.items.has_attributes


def test_text_embeddings_are_frozen_and_survive_save_load(tmp_path) -> None:
    split = planted_split()
    rng = np.random.default_rng(0)
    text = rng.normal(size=(split.train.n_items, 12)).astype(np.float32)
    model = SASRec(**{**FAST, "epochs": 2, "text_embeddings": text}).fit(split.train)
    np.testing.assert_array_equal(model.network.items.text.numpy(), text)  # frozen: never trained
    assert model.network.items.text_projection.weight.requires_grad
    np.save(tmp_path / "text.npy", text)
    by_path = SASRec(**{**FAST, "epochs": 2, "text_embeddings": str(tmp_path / "text.npy")}).fit(split.train)
    np.testing.assert_allclose(by_path.item_vectors(), model.item_vectors(), rtol=1e-5, atol=1e-6)
    loaded = Recommender.load(model.save(tmp_path / "model"))
    users = np.arange(20)
    np.testing.assert_allclose(loaded.score(users, split.test_history), model.score(users, split.test_history), rtol=1e-5, atol=1e-6)


def test_bad_text_embeddings_shape_is_rejected() -> None:
    split = planted_split()
    with pytest.raises(ValueError, match="text_embeddings"):
        SASRec(**{**FAST, "text_embeddings": np.zeros((3, 4), np.float32)}).fit(split.train)


def test_item_vectors_from_the_build_are_used_as_text_side_information() -> None:
    split = planted_split()
    vectors = np.random.default_rng(1).normal(size=(split.train.n_items, 8)).astype(np.float32)
    data = Interactions(split.train.n_users, split.train.n_items, split.train.users, split.train.items,
                        item_attributes=split.train.item_attributes, meta={"item_vectors": vectors})
    model = SASRec(**{**FAST, "epochs": 1}).fit(data)
    np.testing.assert_array_equal(model.network.items.text.numpy(), vectors)
    assert not SASRec(**{**FAST, "epochs": 1, "use_item_vectors": False}).fit(data).network.items.has_text
