"""Hybrid ranking of lexical + semantic candidates: reciprocal-rank fusion and a learned blend.

Retrieval gives two ranked lists (BM25 hits from the lexical index, cosine hits from the vector
index). Their union is ranked either by reciprocal-rank fusion (RRF, the untrained baseline) or by
`LearnedBlend`, a LightGBM LambdaRank model over per-(query, candidate) features
(`FEATURE_NAMES`): both retrieval scores and ranks, RRF, how well the title covers the query
(terms, bigrams, phrase, numbers, head noun), title length and product signals (popularity,
rating, price), plus an optional personalisation score. Trained from graded judgments or click
labels, grouped by query.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from shoprec.errors import ShoprecError

# -- reciprocal-rank fusion ----------------------------------------------------------------------


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: float = 60.0,
                           weights: Sequence[float] | None = None) -> tuple[list[str], np.ndarray]:
    """Fuse ranked id lists: score(d) = sum_i w_i / (k + rank_i(d)), rank 1-based.

    Returns (ids best first, scores (n,) float64); ties keep first-seen order."""
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    ids = list(scores)
    values = np.fromiter(scores.values(), np.float64, len(ids))
    order = np.argsort(-values, kind="stable")
    return [ids[i] for i in order], values[order]


# -- text analysis for match features ------------------------------------------------------------

# Unit spellings folded to one form so "1-gal." matches "1 gallon" and "3/4 in." matches "3/4 inch".
_UNITS = {
    "inch": "in", "inches": "in", "in": "in", '"': "in",
    "foot": "ft", "feet": "ft", "ft": "ft",
    "gallon": "gal", "gallons": "gal", "gal": "gal",
    "pound": "lb", "pounds": "lb", "lbs": "lb", "lb": "lb",
    "ounce": "oz", "ounces": "oz", "oz": "oz",
    "volt": "v", "volts": "v", "watt": "w", "watts": "w", "amp": "a", "amps": "a",
    "quart": "qt", "quarts": "qt", "qt": "qt", "cubic": "cu", "cu": "cu",
    "sq": "sq", "square": "sq", "yard": "yd", "yards": "yd", "millimeter": "mm", "mm": "mm",
}
_TOKEN = re.compile(r"\d+(?:[./]\d+)*|[^\W\d_]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def stem(term: str) -> str:
    """Light English plural folding (boxes -> box, lights -> light, glasses -> glass)."""
    if len(term) <= 3 or not term.isalpha():
        return term
    if term.endswith("ies") and len(term) > 4:
        return term[:-3] + "y"
    if term.endswith(("ches", "shes", "sses", "xes", "zes")):
        return term[:-2]
    if term.endswith("s") and not term.endswith(("ss", "us", "is")):
        return term[:-1]
    return term


def match_terms(text: str) -> list[str]:
    """Lower-cased, unit-folded, plural-folded terms; CJK runs split into characters. For features only."""
    out: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        if _CJK.search(token):
            out.extend(ch for ch in token if not ch.isspace())
            continue
        unit = _UNITS.get(token)
        out.append(unit if unit is not None else stem(token))
    return out


# -- features ------------------------------------------------------------------------------------

FEATURE_NAMES: list[str] = [
    "lex_score", "lex_score_ratio", "lex_rank", "in_lexical", "lex_matched_share",
    "sem_cosine", "sem_cosine_gap", "sem_rank", "in_semantic", "rrf",
    "coverage", "coverage_weighted", "bigram_coverage", "exact_phrase", "head_match", "first_match",
    "number_match", "match_position", "title_len", "query_len", "bm25_folded",
    "popularity", "rating", "price", "personal", "prior_count", "prior_gain",
]
PRIOR_COLUMNS = slice(FEATURE_NAMES.index("prior_count"), FEATURE_NAMES.index("prior_gain") + 1)
SIGNAL_COLUMNS = slice(FEATURE_NAMES.index("popularity"), FEATURE_NAMES.index("price") + 1)


@dataclass
class CandidateSet:
    """One query's candidates and their feature rows: ids (n,), features (n, len(FEATURE_NAMES))."""

    query: str
    ids: list[str]
    features: np.ndarray
    lexical: dict[str, Any] = field(default_factory=dict)  # id -> lexical hit (for highlights/reasons)
    semantic_ids: set[str] = field(default_factory=set)
    rrf: np.ndarray | None = None
    semantic_list: list[str] = field(default_factory=list)  # semantic hits, best first
    # Filled on first use, as the set is reused by every shopper typing the query: the ranking
    # scores without a shopper (n,), and the highlights of hits that were shown (id -> field -> html).
    scores: np.ndarray | None = None
    highlights: dict[str, dict[str, str]] = field(default_factory=dict)
    # What personalising needs of each candidate: category codes (n, depth) int32 (-1 pads) and
    # {category: code}; see `Searcher._personal_inputs`.
    personal_inputs: tuple[np.ndarray, dict[str, int]] | None = None

    def column(self, name: str) -> np.ndarray:
        return self.features[:, FEATURE_NAMES.index(name)]


def query_term_weights(terms: Sequence[str], document_frequency: Mapping[str, int] | None, n_docs: int) -> np.ndarray:
    """IDF weight of each query term (1 each without statistics). (t,) float64."""
    if not document_frequency or n_docs <= 0:
        return np.ones(len(terms))
    return np.array([math.log(1.0 + (n_docs - document_frequency.get(t, 0) + 0.5) / (document_frequency.get(t, 0) + 0.5))
                     for t in terms])


def build_features(query: str, ids: Sequence[str], title_terms: Sequence[Sequence[str]],
                   lexical: Mapping[str, tuple[int, float, int]], semantic: Mapping[str, int],
                   cosines: np.ndarray, rrf: np.ndarray, signals: np.ndarray | None = None,
                   personal: np.ndarray | None = None, prior: np.ndarray | None = None,
                   term_weights: Mapping[str, float] | None = None, lexical_k: int = 100,
                   semantic_k: int = 100, avg_title_len: float = 10.0) -> np.ndarray:
    """Feature rows for one query's candidates. Returns (n, len(FEATURE_NAMES)) float32.

    ids (n,); title_terms: `match_terms` of each candidate's title; lexical: id -> (rank, BM25,
    matched query terms); semantic: id -> rank among the semantic hits; cosines (n,) query-item
    cosine of every candidate; rrf (n,); signals (n, 3) popularity, rating, price (NaN unknown);
    personal (n,) or None; prior (n, 2) product prior or None; term_weights: IDF per query term
    (also used by "bm25_folded", BM25 k1=1.2 b=0.75 over the folded title terms).
    """
    n = len(ids)
    features = np.full((n, len(FEATURE_NAMES)), np.nan, np.float32)
    if n == 0:
        return features
    q_terms = list(dict.fromkeys(match_terms(query)))
    q_set = set(q_terms)
    q_numbers = {t for t in q_terms if t[:1].isdigit()}
    q_bigrams = set(zip(q_terms, q_terms[1:]))
    weights = np.array([float((term_weights or {}).get(t, 1.0)) for t in q_terms]) if q_terms else np.ones(0)
    weight_total = float(weights.sum()) or 1.0
    q_phrase = " ".join(match_terms(query))
    head, first = (q_terms[-1], q_terms[0]) if q_terms else ("", "")

    lex_rank = np.full(n, lexical_k, np.float32)
    lex_score = np.zeros(n, np.float32)
    lex_matched = np.zeros(n, np.float32)
    sem_rank = np.full(n, semantic_k, np.float32)
    for i, item in enumerate(ids):
        hit = lexical.get(item)
        if hit is not None:
            lex_rank[i], lex_score[i], lex_matched[i] = hit
        rank = semantic.get(item)
        if rank is not None:
            sem_rank[i] = rank
    max_lex = float(lex_score.max()) or 1.0
    cosines = np.asarray(cosines, np.float32)

    coverage = np.zeros(n, np.float32)
    weighted = np.zeros(n, np.float32)
    bigram = np.zeros(n, np.float32)
    phrase = np.zeros(n, np.float32)
    head_match = np.zeros(n, np.float32)
    first_match = np.zeros(n, np.float32)
    numbers = np.full(n, np.nan, np.float32)
    position = np.full(n, np.nan, np.float32)
    title_len = np.zeros(n, np.float32)
    bm25 = np.zeros(n, np.float32)
    k1, b = 1.2, 0.75
    for i, terms in enumerate(title_terms):
        t_set = set(terms)
        title_len[i] = len(terms)
        if not q_terms:
            continue
        norm = k1 * (1 - b + b * len(terms) / max(avg_title_len, 1e-6))
        for t, w in zip(q_terms, weights.tolist()):
            if t in t_set:
                tf = terms.count(t)
                bm25[i] += w * tf * (k1 + 1) / (tf + norm)
        hits = [t in t_set for t in q_terms]
        coverage[i] = sum(hits) / len(q_terms)
        weighted[i] = float(weights[np.asarray(hits)].sum()) / weight_total
        if q_bigrams:
            t_bigrams = set(zip(terms, terms[1:]))
            bigram[i] = len(q_bigrams & t_bigrams) / len(q_bigrams)
        phrase[i] = float(bool(q_phrase) and q_phrase in " ".join(terms))
        head_match[i] = float(head in t_set)
        first_match[i] = float(first in t_set)
        if q_numbers:
            numbers[i] = len(q_numbers & t_set) / len(q_numbers)
        for pos, term in enumerate(terms):
            if term in q_set:
                position[i] = pos / max(len(terms), 1)
                break

    features[:, 0] = lex_score
    features[:, 1] = lex_score / max_lex
    features[:, 2] = lex_rank
    features[:, 3] = (lex_rank < lexical_k).astype(np.float32)
    features[:, 4] = lex_matched / max(len(q_terms), 1)
    features[:, 5] = cosines
    features[:, 6] = float(cosines.max()) - cosines
    features[:, 7] = sem_rank
    features[:, 8] = (sem_rank < semantic_k).astype(np.float32)
    features[:, 9] = rrf
    features[:, 10] = coverage
    features[:, 11] = weighted
    features[:, 12] = bigram
    features[:, 13] = phrase
    features[:, 14] = head_match
    features[:, 15] = first_match
    features[:, 16] = numbers
    features[:, 17] = position
    features[:, 18] = title_len
    features[:, 19] = len(q_terms)
    features[:, FEATURE_NAMES.index("bm25_folded")] = bm25
    if signals is not None:
        features[:, SIGNAL_COLUMNS] = np.asarray(signals, np.float32).reshape(n, 3)
    if personal is not None:
        features[:, FEATURE_NAMES.index("personal")] = np.asarray(personal, np.float32).reshape(n)
    if prior is not None:
        features[:, PRIOR_COLUMNS] = np.asarray(prior, np.float32).reshape(n, 2)
    return features


# -- learned blend -------------------------------------------------------------------------------


class BlendConfig(BaseModel):
    """LightGBM LambdaRank settings for the learned blend."""

    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 40
    subsample: float = 0.8
    subsample_freq: int = 1
    colsample_bytree: float = 0.9
    # Graded labels are gains in [0, max_gain]; LightGBM wants integer grades, so gains are
    # quantised to `grades_per_unit` steps and the label_gain table maps them back linearly.
    grades_per_unit: int = 3
    max_gain: float = 2.0
    truncation_level: int = 20
    # One thread: LightGBM's OpenMP threads spin-wait, which is slow on a shared, busy machine.
    n_jobs: int = 1
    seed: int = 0
    # Features left out (e.g. "prior_count", "prior_gain" when no prior is supplied).
    exclude: list[str] = Field(default_factory=list)


def compiled_trees(model_file: Path, write_cache: bool = False) -> Any | None:
    """The LightGBM model in `model_file` compiled to machine code by lleaves, or None when lleaves
    is not installed (LightGBM then predicts).

    Same scores (to 1e-14), about 7x faster on the few hundred rows of one search (1.75 -> 0.24 ms
    for the 300-tree blend on 400 rows), and the call releases the interpreter lock. Compiled code
    is specific to the CPU, so it is kept beside the model as `<stem>-<cpu digest>.so`: written by the
    build when `write_cache`, read when it matches this CPU, else compiled in memory (~6 s)."""
    try:
        import lleaves
        import llvmlite.binding as llvm
    except ImportError:
        return None
    llvm.initialize()
    llvm.initialize_native_target()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot tell on some hosts: no cache then
        features = None
    cache = None
    if features is not None:
        cpu = hashlib.blake2b((llvm.get_host_cpu_name() + features).encode(), digest_size=6).hexdigest()
        candidate = model_file.with_name(f"{model_file.stem}-{cpu}.so")
        cache = candidate if write_cache or candidate.exists() else None
    model = lleaves.Model(model_file=str(model_file))
    model.compile(cache=str(cache) if cache is not None else None)
    return model


class LearnedBlend:
    """LightGBM LambdaRank over `FEATURE_NAMES`, trained on query-grouped graded labels."""

    def __init__(self, config: BlendConfig | None = None):
        self.config = config or BlendConfig()
        self.booster = None
        self.compiled = None  # the same trees as machine code (`compiled_trees`), once saved or loaded
        self.columns = [i for i, name in enumerate(FEATURE_NAMES) if name not in self.config.exclude]
        # False: rank every shopper as an anonymous one (set when the personal feature did not help
        # held-out shoppers; it is then left unfilled, as for a shopper without history).
        self.use_personal = True

    @property
    def feature_names(self) -> list[str]:
        return [FEATURE_NAMES[i] for i in self.columns]

    def _grades(self, gains: np.ndarray) -> np.ndarray:
        c = self.config
        return np.clip(np.rint(np.asarray(gains, np.float64) * c.grades_per_unit), 0, c.max_gain * c.grades_per_unit).astype(np.int32)

    def fit(self, features: Sequence[np.ndarray], gains: Sequence[np.ndarray]) -> "LearnedBlend":
        """Train on one (n_q, F) feature matrix and (n_q,) gain vector per query.

        Queries whose candidates all have gain 0 carry no ranking signal and are skipped."""
        import lightgbm as lgb

        keep = [i for i, g in enumerate(gains) if len(g) and float(np.max(g)) > 0]
        if not keep:
            raise ShoprecError("learned blend: no query has a candidate with positive gain")
        X = np.concatenate([features[i][:, self.columns] for i in keep])
        y = np.concatenate([self._grades(gains[i]) for i in keep])
        group = [len(gains[i]) for i in keep]
        c = self.config
        n_grades = int(c.max_gain * c.grades_per_unit) + 1
        params = {
            "objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [10],
            "learning_rate": c.learning_rate, "num_leaves": c.num_leaves,
            "min_data_in_leaf": c.min_child_samples, "bagging_fraction": c.subsample,
            "bagging_freq": c.subsample_freq, "feature_fraction": c.colsample_bytree,
            "label_gain": [g / c.grades_per_unit for g in range(n_grades)],
            "lambdarank_truncation_level": c.truncation_level, "num_threads": c.n_jobs,
            "seed": c.seed, "deterministic": True, "verbose": -1,
        }
        data = lgb.Dataset(X, y, group=group, feature_name=self.feature_names, free_raw_data=True)
        self.booster = lgb.train(params, data, num_boost_round=c.n_estimators)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Blend scores for (n, len(FEATURE_NAMES)) rows. Returns (n,) float64."""
        if self.booster is None:
            raise ShoprecError("learned blend is not trained")
        if not len(features):
            return np.zeros(0)
        if self.compiled is not None:
            return self.compiled.predict(np.ascontiguousarray(np.asarray(features)[:, self.columns], np.float64), n_jobs=1)
        return self.booster.predict(np.asarray(features)[:, self.columns], num_threads=1)

    def feature_importance(self) -> dict[str, float]:
        """Share of total split gain per feature, largest first."""
        if self.booster is None:
            return {}
        gain = self.booster.feature_importance(importance_type="gain")
        total = float(gain.sum()) or 1.0
        pairs = sorted(zip(self.feature_names, gain / total), key=lambda p: -p[1])
        return {name: round(float(share), 4) for name, share in pairs}

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.booster is None:
            raise ShoprecError("learned blend is not trained")
        self.booster.save_model(str(path / "blend.lgb"))
        self.compiled = compiled_trees(path / "blend.lgb", write_cache=True)
        (path / "blend.json").write_text(json.dumps({"config": self.config.model_dump(), "features": FEATURE_NAMES,
                                                     "use_personal": self.use_personal}))

    @classmethod
    def load(cls, path: str | Path) -> "LearnedBlend":
        import lightgbm as lgb

        path = Path(path)
        meta = json.loads((path / "blend.json").read_text())
        if meta["features"] != FEATURE_NAMES:
            raise ShoprecError(f"{path}: blend was trained on other features; retrain it")
        blend = cls(BlendConfig(**meta["config"]))
        blend.booster = lgb.Booster(model_file=str(path / "blend.lgb"))
        blend.compiled = compiled_trees(path / "blend.lgb")
        blend.use_personal = bool(meta.get("use_personal", True))
        return blend


def query_folds(queries: Sequence[str], n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..n_folds-1) per query, by a seeded permutation of the distinct queries. (n,) int."""
    distinct = sorted(set(queries))
    perm = np.random.default_rng(seed).permutation(len(distinct))
    fold_of = {distinct[j]: int(i % n_folds) for i, j in enumerate(perm)}
    return np.array([fold_of[q] for q in queries], np.int64)


def cross_validated_scores(features: Sequence[np.ndarray], gains: Sequence[np.ndarray], folds: np.ndarray,
                           config: BlendConfig | None = None,
                           fold_prior: Callable[[int], Callable[[int], np.ndarray] | None] | None = None
                           ) -> tuple[list[np.ndarray], list[dict[str, float]], list[float]]:
    """Query-grouped k-fold: each query is scored by a model trained only on the other folds.

    features/gains: one (n_q, F) / (n_q,) array per query; folds (n_queries,). `fold_prior(f)`
    may return a function q -> (n_q, 2) prior columns computed from fold f's *training* queries.
    Returns held-out scores per query, feature importances per fold, and predict seconds per query.
    """
    import time

    scores: list[np.ndarray] = [np.zeros(0)] * len(features)
    importances: list[dict[str, float]] = []
    predict_seconds = [0.0] * len(features)
    for fold in sorted(set(folds.tolist())):
        train = np.flatnonzero(folds != fold)
        test = np.flatnonzero(folds == fold)
        prior_of = fold_prior(fold) if fold_prior is not None else None

        def rows(q: int) -> np.ndarray:
            if prior_of is None:
                return features[q]
            x = features[q].copy()
            x[:, PRIOR_COLUMNS] = prior_of(q)
            return x

        blend = LearnedBlend(config).fit([rows(q) for q in train], [gains[q] for q in train])
        importances.append(blend.feature_importance())
        for q in test.tolist():
            x = rows(q)
            t0 = time.perf_counter()
            scores[q] = blend.predict(x)
            predict_seconds[q] = time.perf_counter() - t0
    return scores, importances, predict_seconds
