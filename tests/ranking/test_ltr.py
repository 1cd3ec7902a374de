import numpy as np

from shoprec.ranking.build import holdout_last, sessions, subset
from shoprec.ranking.ltr import LTRConfig, LTRRanker, groups_from_ids
from shoprec.recommend.dataset import Interactions


def test_groups_from_ids():
    assert groups_from_ids(np.array([3, 3, 1, 1, 1, 7])).tolist() == [2, 3, 1]
    assert groups_from_ids(np.array([])).tolist() == []


def test_lambdarank_learns_the_relevant_feature(tmp_path):
    rng = np.random.default_rng(0)
    n_groups, size = 300, 20
    x = rng.normal(size=(n_groups * size, 3)).astype(np.float32)
    # Relevance is driven by feature 1 only; features 0 and 2 are noise.
    y = (x[:, 1] + 0.3 * rng.normal(size=len(x)) > 1.0).astype(int)
    groups = np.full(n_groups, size)
    ranker = LTRRanker(["noise_a", "signal", "noise_b"], LTRConfig(n_estimators=60)).fit(x, y, groups)
    assert next(iter(ranker.feature_importance())) == "signal"
    xt = rng.normal(size=(size, 3)).astype(np.float32)
    order = np.argsort(-ranker.predict(xt))
    assert np.corrcoef(np.arange(size), xt[order, 1])[0, 1] < -0.5  # best-ranked have the largest signal
    ranker.save(tmp_path / "r")
    assert np.allclose(LTRRanker.load(tmp_path / "r").predict(xt), ranker.predict(xt))


def test_holdout_last_and_subset_keep_index_space():
    data = Interactions(3, 5, users=[0, 1, 0, 0, 1, 2, 1], items=[0, 1, 2, 3, 4, 0, 2])
    mask = holdout_last(data, min_len=3)
    assert np.flatnonzero(mask).tolist() == [3, 6]  # user 0's and user 1's last events; user 2 too short
    train = subset(data, ~mask)
    assert train.n_items == 5 and len(train) == 5
    assert [s.tolist() for s in train.sequences] == [[0, 2], [1, 4], [0]]


def test_sessions_split_on_gap_and_user():
    users = np.array([0, 0, 0, 1])
    times = np.array([0.0, 60.0, 60.0 + 3600, 10.0])
    s = sessions(users, times)
    assert s[0] == s[1] != s[2] and s[3] not in (s[0], s[2])
