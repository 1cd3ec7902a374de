"""Reciprocal-rank fusion, match features and the LightGBM LambdaRank blend."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.search.hybrid import (
    FEATURE_NAMES,
    BlendConfig,
    LearnedBlend,
    build_features,
    cross_validated_scores,
    match_terms,
    query_folds,
    reciprocal_rank_fusion,
)


def test_rrf_hand_computed():
    ids, scores = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], k=60)
    expected = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61, "d": 1 / 63}
    assert ids == ["a", "c", "b", "d"]
    np.testing.assert_allclose(scores, [expected[i] for i in ids])
    ids, scores = reciprocal_rank_fusion([["x"], ["y"]], k=1, weights=[1.0, 3.0])
    assert ids == ["y", "x"] and scores.tolist() == [1.5, 0.5]


def test_match_terms_folds_units_and_plurals():
    assert match_terms("BEHR DeckOver 1-gal. Boxes") == ["behr", "deckover", "1", "gal", "box"]
    assert match_terms("3/4 in. x 8 Feet") == ["3/4", "in", "x", "8", "ft"]
    assert match_terms("无线耳机 Glasses") == ["无", "线", "耳", "机", "glass"]


def test_features_on_hand_case():
    titles = [match_terms("Delta Rain Shower Head in Chrome"), match_terms("Shower Curtain Rod")]
    f = build_features("rain shower head", ["a", "b"], titles, lexical={"a": (0, 12.0, 3), "b": (1, 6.0, 1)},
                       semantic={"b": 0}, cosines=np.array([0.8, 0.9]), rrf=np.array([1 / 61, 1 / 61 + 1 / 62]),
                       lexical_k=100, semantic_k=100)
    col = {name: f[:, i] for i, name in enumerate(FEATURE_NAMES)}
    assert f.shape == (2, len(FEATURE_NAMES))
    assert col["coverage"].tolist() == [1.0, pytest.approx(1 / 3)]
    assert col["exact_phrase"].tolist() == [1.0, 0.0]
    assert col["bigram_coverage"].tolist() == [1.0, 0.0]
    assert col["head_match"].tolist() == [1.0, 0.0]
    assert col["lex_score_ratio"].tolist() == [1.0, 0.5]
    assert col["sem_rank"].tolist() == [100.0, 0.0] and col["in_semantic"].tolist() == [0.0, 1.0]
    assert col["sem_cosine_gap"] == pytest.approx([0.1, 0.0], abs=1e-6)
    assert np.isnan(col["number_match"]).all()  # the query has no numbers
    assert np.isnan(col["personal"]).all()


def synthetic_queries(rng, n_queries=300, n_cands=30):
    """Relevance depends on two signals; each signal alone is a noisy view of it."""
    features, gains = [], []
    for _ in range(n_queries):
        rel = rng.integers(0, 3, n_cands).astype(float)
        x = np.full((n_cands, len(FEATURE_NAMES)), np.nan, np.float32)
        x[:, FEATURE_NAMES.index("lex_score")] = rel + rng.normal(0, 1.2, n_cands)
        x[:, FEATURE_NAMES.index("sem_cosine")] = 0.3 * rel + rng.normal(0, 0.36, n_cands)
        x[:, FEATURE_NAMES.index("coverage")] = rng.random(n_cands)  # noise
        features.append(x)
        gains.append(rel)
    return features, gains


def ndcg10(scores, gains):
    order = np.argsort(-scores, kind="stable")[:10]
    disc = 1 / np.log2(np.arange(2, 12))
    return (gains[order] * disc[: len(order)]).sum() / (np.sort(gains)[::-1][:10] * disc[: len(order)]).sum()


def test_blend_beats_each_single_signal_on_held_out_queries(tmp_path):
    rng = np.random.default_rng(0)
    features, gains = synthetic_queries(rng)
    folds = query_folds([str(i) for i in range(len(features))], 3, seed=0)
    config = BlendConfig(n_estimators=80, min_child_samples=20, n_jobs=1)
    scores, importances, _ = cross_validated_scores(features, gains, folds, config)
    blend = np.mean([ndcg10(s, g) for s, g in zip(scores, gains)])
    lex = np.mean([ndcg10(x[:, 0], g) for x, g in zip(features, gains)])
    sem = np.mean([ndcg10(x[:, FEATURE_NAMES.index("sem_cosine")], g) for x, g in zip(features, gains)])
    assert blend > max(lex, sem) + 0.01
    assert set(list(importances[0])[:2]) == {"lex_score", "sem_cosine"}

    model = LearnedBlend(config).fit(features, gains)
    model.save(tmp_path / "blend")
    loaded = LearnedBlend.load(tmp_path / "blend")
    np.testing.assert_allclose(loaded.predict(features[0]), model.predict(features[0]))


def test_the_compiled_blend_scores_exactly_as_lightgbm(tmp_path):
    """lleaves' machine code for the trees (written by save for this CPU, read by load) gives
    LightGBM's scores, missing values included."""
    rng = np.random.default_rng(3)
    features, gains = synthetic_queries(rng)
    model = LearnedBlend(BlendConfig(n_estimators=60, min_child_samples=20)).fit(features, gains)
    model.save(tmp_path / "blend")
    assert len(list((tmp_path / "blend").glob("blend-*.so"))) == 1
    loaded = LearnedBlend.load(tmp_path / "blend")
    assert loaded.compiled is not None
    rows = np.concatenate(features[:5])
    rows[::7, 0] = np.nan
    by_lightgbm = loaded.booster.predict(rows[:, loaded.columns], num_threads=1)
    assert np.abs(by_lightgbm).max() > 0
    np.testing.assert_allclose(loaded.predict(rows), by_lightgbm, rtol=0, atol=1e-9)


def test_query_folds_keep_a_query_in_one_fold():
    queries = ["a", "b", "a", "c", "d", "b"]
    folds = query_folds(queries, 2, seed=1)
    assert folds[0] == folds[2] and folds[1] == folds[5]
    assert set(folds.tolist()) <= {0, 1}
