"""The search facade: build/load every search artifact and answer `search(query) -> RankedList`.

A query goes through: normalisation and spelling correction ("did you mean" in `info`), synonym
expansion, lexical retrieval (tantivy BM25) and semantic retrieval (language-model vectors in
faiss), the learned blend (or reciprocal-rank fusion when no blend is trained), merchandising
rules, pagination, facets, highlights and a reason per hit. A query without lexical matches falls
back to semantic results and is logged. `upsert` / `delete` keep the lexical index, the vector
index and the embedding cache current, so a new product is searchable at once.

Folder layout written by `Searcher.build` (inside an artifact version's `search/`):
    searcher.json       config, encoder, counts, build timings
    catalog.parquet     id, title, brand, category, price, rating, available, popularity
    lexical/            the tantivy index (shoprec.search.lexical)
    vectors/            item vectors + faiss index (shoprec.search.vector)
    query/              spelling, suggestion and synonym data
    blend/              the learned blend, when judgments or clicks were given
"""

from __future__ import annotations

import json
import pickle
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from shoprec.data.schemas import Product, normalize_text
from shoprec.errors import ShoprecError
from shoprec.result_cache import ResultCache, SharedAnswers
from shoprec.search.hybrid import (
    CandidateSet,
    FEATURE_NAMES,
    LearnedBlend,
    build_features,
    match_terms,
    query_term_weights,
    reciprocal_rank_fusion,
)
from shoprec.search.language import LanguageCentering
from shoprec.search.vector import VectorIndex, VectorIndexConfig
from shoprec.settings import Settings, get_settings
from shoprec.text.encoder import CachedEncoder, Encoder, get_encoder
from shoprec.types import Hit, RankedList

DEFAULT_SYNONYMS = Path(__file__).with_name("synonyms_default.txt")

Personalize = Callable[[list[str]], np.ndarray]


QUERY_VECTORS = "query_vectors.npz"


def _searched_text(query: str, query_data: "QueryData | None") -> str:
    """What a normalised query is searched (and embedded) as: its spelling correction, if any."""
    if query_data is None or not query:
        return query
    corrected = query_data.correct(query)
    return corrected if corrected and corrected.lower() != query.lower() else query


def shopper_profile(categories: Sequence[str], vectors: np.ndarray | None) -> dict[str, Any] | None:
    """A shopper's search profile from the items they interacted with, oldest first: their leaf
    categories (n,) and language-model vectors (n, dim). Recency-weighted (halving every 10 items)
    category affinities and a unit interest vector; None without history."""
    if not len(categories):
        return None
    weights = np.power(0.5, np.arange(len(categories))[::-1] / 10.0)
    affinities: dict[str, float] = {}
    for category, weight in zip(categories, weights.tolist()):
        affinities[category] = affinities.get(category, 0.0) + weight
    profile: dict[str, Any] = {"categories": affinities}
    if vectors is not None and len(vectors):
        vector = (np.asarray(vectors, np.float64) * weights[:, None]).sum(0)
        profile["vector"] = (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)
    return profile


class ShopperAffinity:
    """A shopper's affinity for products, (n,) float32 in [-0.5, 1]: half the cosine between their
    interest vector and the product's, plus half their strongest category weight (relative to their
    top category) among the product's category path."""

    def __init__(self, searcher: "Searcher", vector: np.ndarray | None, categories: Mapping[str, float] | None):
        self.searcher = searcher
        self.vector = None if vector is None else np.asarray(vector, np.float32)
        self.categories = dict(categories or {})
        self.top = (max(self.categories.values()) if self.categories else 1.0) or 1.0

    def __call__(self, ids: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(ids), np.float32)
        if self.vector is not None:
            out += 0.5 * (self.searcher.vectors.vectors_for(ids)[1] @ self.vector)
        if self.categories:
            known = set(self.categories)
            catalog = self.searcher.catalog
            for row, i in enumerate(ids):
                path = catalog[i]["category"] if i in catalog else []
                if not known.isdisjoint(path):  # most share none: skipped at C speed
                    out[row] += 0.5 * max(self.categories.get(c, 0.0) for c in path) / self.top
        return out

    def of_candidates(self, inputs: tuple[np.ndarray, np.ndarray, dict[str, int]]) -> np.ndarray:
        """The same for a candidate set, from `Searcher._personal_inputs` (vectorised)."""
        vectors, codes, names = inputs
        out = np.zeros(len(codes), np.float32)
        if self.vector is not None:
            out += 0.5 * (vectors @ self.vector)
        if self.categories:
            weights = np.zeros(len(names) + 1, np.float32)  # the last slot: padding, weight 0
            for category, weight in self.categories.items():
                code = names.get(category)
                if code is not None:
                    weights[code] = weight
            out += 0.5 * np.maximum(weights[codes].max(axis=1), 0.0) / self.top
        return out


class SearcherConfig(BaseModel):
    """Retrieval depth and fusion settings (defaults from `settings.search`)."""

    lexical_k: int = 200
    semantic_k: int = 200
    rrf_k: int = 60
    hnsw_threshold: int = 50_000
    fuzzy: bool = True
    spelling: bool = True
    synonyms: bool = True
    facet_fields: list[str] = ["category", "brand", "price_band"]
    facet_top: int = 10
    # A zero-result fallback shows semantic hits within `fallback_margin` cosine of the best one
    # and above `fallback_min_cosine` (E5 cosines of unrelated short texts sit around 0.75-0.80).
    fallback_min_cosine: float = 0.75
    fallback_margin: float = 0.06
    personal_weight: float = 0.3
    # Mine synonyms among this many frequent catalog words with the language model (0: off).
    mine_synonym_terms: int = 0
    # The most frequent past queries get their language-model vectors computed at build time, so
    # the head of the query stream never waits for the encoder (~10 ms per query on one core).
    precompute_queries: int = 20_000
    # Queries whose retrieved candidates (and facets) are kept for the next shopper typing them, and
    # how many of the most frequent past queries `warm()` retrieves before a version is served.
    candidate_cache_size: int = 5_000
    warm_queries: int = 5_000

    @classmethod
    def from_settings(cls, settings: Settings) -> "SearcherConfig":
        s = settings.search
        return cls(lexical_k=s.lexical_k, semantic_k=s.semantic_k, rrf_k=s.rrf_k, hnsw_threshold=s.hnsw_threshold)


def products_from(products: Any) -> list[Product]:
    """Accept Products, dicts or a store table (category/attributes as JSON text) -> list[Product]."""
    if hasattr(products, "to_pylist"):
        products = products.to_pylist()
    out = []
    for i, row in enumerate(products):
        if isinstance(row, Product):
            out.append(row)
            continue
        row = {k: v for k, v in dict(row).items() if k in Product.model_fields and v is not None}
        for key in ("category", "attributes"):
            if isinstance(row.get(key), str) and row[key][:1] in "[{":
                row[key] = json.loads(row[key])
        try:
            out.append(Product(**row))
        except Exception as exc:  # pydantic ValidationError: say which row
            raise ShoprecError(f"product row {i} (id={row.get('id')!r}): {exc}") from exc
    return out


class Searcher:
    """Hybrid lexical + semantic product search over one artifact folder."""

    def __init__(self, path: Path, config: SearcherConfig, encoder: Encoder, lexical: Any, vectors: VectorIndex,
                 catalog: dict[str, dict[str, Any]], blend: LearnedBlend | None = None, query_data: Any = None,
                 info: dict[str, Any] | None = None, rules: Sequence[Any] | None = None,
                 centering: LanguageCentering | None = None):
        self.path = Path(path)
        self.centering = centering or LanguageCentering()
        self.config = config
        self.encoder = encoder
        self.lexical = lexical
        self.vectors = vectors
        self.catalog = catalog
        self.blend = blend
        self.query_data = query_data or QueryData.empty()
        self.info = info or {}
        self.rules = list(rules or [])
        self._title_terms: dict[str, list[str]] = {pid: match_terms(p["title"]) for pid, p in catalog.items()}
        self._df: Counter = Counter()
        self._filter_cache: dict[str, set[str]] = {}
        # Retrieved candidates and facet counts per query; `_epoch` moves on every catalog or rules change.
        self._epoch = 0
        self._retrieved = ResultCache(config.candidate_cache_size)
        self.frequent_queries = []  # past queries, most frequent first, as searched
        self._facets_of = ResultCache(config.candidate_cache_size)
        # Candidate sets shared with the other serving processes (`share_candidates`), and the stamp
        # of the catalog changes applied here (processes with equal stamps share sets).
        self._shared: tuple[SharedAnswers, str] | None = None
        self.changes_stamp: int = 0
        self._avg_title_len = float(np.mean([len(t) for t in self._title_terms.values()])) if catalog else 10.0
        for terms in self._title_terms.values():
            self._df.update(set(terms))

    # -- building and loading ----------------------------------------------------------------
    @classmethod
    def build(cls, products: Any, artifact_dir: str | Path, encoder: Encoder | str | None = None,
              settings: Settings | None = None, config: SearcherConfig | None = None,
              cache_dir: str | Path | None = None, workers: int = 2,
              popularity: Mapping[str, float] | None = None, queries: Iterable[str] = (),
              blend: LearnedBlend | None = None, progress: bool | None = None) -> "Searcher":
        """Build every search artifact for `products` into `artifact_dir` and return the searcher.

        encoder: an Encoder, a registry name, or None for `settings.encoder`; item embeddings go
        through the on-disk cache at `cache_dir` (default `settings.embedding_cache_dir`), embedded
        by `workers` processes. popularity: optional id -> count used as a ranking signal.
        queries: past queries for suggestions and spelling.
        """
        from shoprec.search.lexical import LexicalIndex

        settings = settings or get_settings()
        config = config or SearcherConfig.from_settings(settings)
        path = Path(artifact_dir)
        path.mkdir(parents=True, exist_ok=True)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        items = products_from(products)
        timings["validate_s"] = time.perf_counter() - t0

        if not isinstance(encoder, Encoder):
            encoder = get_encoder(encoder or settings.encoder)
        cached = encoder if isinstance(encoder, CachedEncoder) else \
            CachedEncoder(encoder, cache_dir or settings.embedding_cache_dir, workers=workers, progress=progress)

        t = time.perf_counter()
        lexical = LexicalIndex.build(items, path / "lexical")
        timings["lexical_s"] = time.perf_counter() - t

        t = time.perf_counter()
        vectors_in = cached.encode_items([p.text() for p in items])
        timings["embed_s"] = time.perf_counter() - t
        centering = LanguageCentering.fit(vectors_in, [p.language for p in items])
        centering.save(path)
        vectors_in = centering.items(vectors_in, centering.item_languages([p.language for p in items],
                                                                          [p.title for p in items]))

        t = time.perf_counter()
        ids = [p.id for p in items]
        vectors = VectorIndex.build(ids, vectors_in, VectorIndexConfig(hnsw_threshold=config.hnsw_threshold))
        vectors.save(path / "vectors")
        timings["vector_index_s"] = time.perf_counter() - t

        catalog = {p.id: _catalog_row(p, (popularity or {}).get(p.id)) for p in items}
        _save_catalog(path / "catalog.parquet", catalog)

        t = time.perf_counter()
        query_data = QueryData.build(items, list(queries), cached, path / "query",
                                     synonyms_file=settings.search.synonyms_file,
                                     default_synonyms=settings.search.default_synonyms,
                                     mine_synonym_terms=config.mine_synonym_terms)
        timings["query_data_s"] = time.perf_counter() - t
        t = time.perf_counter()
        head = [q for q, _ in Counter(normalize_text(q) for q in queries if q and q.strip()).most_common(config.precompute_queries)]
        searched = list(dict.fromkeys(_searched_text(q, query_data if config.spelling else None) for q in head))
        if searched:
            np.savez(path / "query" / QUERY_VECTORS, texts=np.asarray(searched, dtype=str),
                     vectors=cached.encode_queries(searched))
        timings["query_vectors_s"] = time.perf_counter() - t
        if blend is not None:
            blend.save(path / "blend")

        info = {
            "products": len(items),
            "embedded": cached.last_embedded,
            "encoder": cached.describe(),
            "vector_index": vectors.kind,
            "language_centering": sorted(centering.means),
            "cache_dir": str(Path(cached.cache.path).parent.resolve()),
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "total_s": round(time.perf_counter() - t0, 3),
        }
        (path / "searcher.json").write_text(json.dumps({"config": config.model_dump(), "info": info}, indent=2))
        return cls(path, config, cached, lexical, vectors, catalog, blend, query_data, info, centering=centering)

    @classmethod
    def load(cls, artifact_dir: str | Path, settings: Settings | None = None,
             encoder: Encoder | None = None) -> "Searcher":
        """Open the search artifacts written by `build` (the folder, e.g. `<version>/search`)."""
        from shoprec.search.lexical import LexicalIndex

        path = Path(artifact_dir)
        meta_file = path / "searcher.json"
        if not meta_file.exists():
            raise ShoprecError(f"{path}: no searcher.json; build the search artifacts first (`shoprec build`)")
        meta = json.loads(meta_file.read_text())
        # The embedding cache used at build time, unless settings are given explicitly.
        cache_dir = settings.embedding_cache_dir if settings is not None else \
            meta["info"].get("cache_dir", get_settings().embedding_cache_dir)
        config = SearcherConfig(**meta["config"])
        if encoder is None:
            described = meta["info"]["encoder"]
            inner = get_encoder(described["registry"], **described.get("kwargs", {}))
            if inner.version != described["version"]:
                raise ShoprecError(f"{path}: built with encoder {described['name']} {described['version']}, "
                                   f"installed is {inner.version}; rebuild the search artifacts")
            encoder = CachedEncoder(inner, cache_dir, workers=1)
        lexical = LexicalIndex.open(path / "lexical")
        vectors = VectorIndex.load(path / "vectors")
        catalog = _load_catalog(path / "catalog.parquet")
        blend = LearnedBlend.load(path / "blend") if (path / "blend" / "blend.lgb").exists() else None
        query_data = QueryData.load(path / "query")
        frequent: list[str] = []
        if (path / "query" / QUERY_VECTORS).exists() and isinstance(encoder, CachedEncoder):
            known = np.load(path / "query" / QUERY_VECTORS)
            encoder.add_known_queries(known["texts"].tolist(), known["vectors"])
            frequent = known["texts"].tolist()
        rules = _load_rules(path)
        searcher = cls(path, config, encoder, lexical, vectors, catalog, blend, query_data, meta["info"], rules,
                       centering=LanguageCentering.load(path))
        searcher.frequent_queries = frequent
        return searcher

    def build_info(self) -> dict[str, Any]:
        """Counts and timings of the build (for the artifact manifest)."""
        return dict(self.info)

    def set_blend(self, blend: LearnedBlend | None, save: bool = True) -> None:
        """Use a trained blend (None: back to reciprocal-rank fusion); saved with the artifacts."""
        import shutil

        self.blend = blend
        if save and blend is not None:
            blend.save(self.path / "blend")
        elif save:
            shutil.rmtree(self.path / "blend", ignore_errors=True)

    def item_embeddings(self, ids: Sequence[str]) -> np.ndarray:
        """Item vectors in the order asked; zero rows for unknown ids. (n, dim) float32."""
        return self.vectors.vectors_for(list(ids))[1]

    # -- incremental updates -----------------------------------------------------------------
    def upsert(self, products: Any) -> int:
        """Add or replace products in the lexical index, vector index and catalog; searchable at once."""
        items = products_from(products)
        if not items:
            return 0
        self.lexical.upsert(items)
        self._filter_cache.clear()
        vectors = self.encoder.encode_items([p.text() for p in items])
        languages = self.centering.item_languages([p.language for p in items], [p.title for p in items])
        self.vectors.add([p.id for p in items], self.centering.items(vectors, languages))
        for p in items:
            old = self.catalog.get(p.id, {})
            self.catalog[p.id] = _catalog_row(p, old.get("popularity"))
            old_terms = self._title_terms.get(p.id)
            if old_terms is not None:
                self._df.subtract(set(old_terms))
            self._title_terms[p.id] = match_terms(p.title)
            self._df.update(set(self._title_terms[p.id]))
        self._epoch += 1  # last: a search racing the update must not cache half of it as current
        return len(items)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove products everywhere; returns how many were present."""
        ids = [str(i) for i in ids]
        self.lexical.delete(ids)
        self._filter_cache.clear()
        removed = self.vectors.remove(ids)
        for pid in ids:
            self.catalog.pop(pid, None)
            terms = self._title_terms.pop(pid, None)
            if terms is not None:
                self._df.subtract(set(terms))
        self._epoch += 1
        return removed

    def bulky_parts(self) -> list[Any]:
        """The containers holding most of this searcher's objects (cached candidate sets, facets,
        the catalog), for freeing a retired version a piece at a time (`Engine._retire`)."""
        return [self._retrieved, self._facets_of, self.catalog]

    def share_candidates(self, shared: SharedAnswers | None, scope: str) -> None:
        """Share the candidate sets this searcher retrieves with the other serving processes of the
        machine, under `scope` (the version and the settings), and read theirs before retrieving.

        Retrieving a query's candidates (lexical and semantic search, feature rows, shopper-free
        scores, the first page's highlights) is ~12 ms of a 13.6 ms search at 5,000 products and
        reading a shared set ~0.2 ms, so a new version's frequent queries are retrieved once per
        machine instead of once per worker (the feed keeper retrieves them first, at idle priority).
        Stored pickled in the shared answers file, which only the service's processes write."""
        self._shared = (shared, scope) if shared is not None else None

    @property
    def frequent_queries(self) -> list[str]:
        return self._frequent

    @frequent_queries.setter
    def frequent_queries(self, texts: list[str]) -> None:
        self._frequent = list(texts)
        self._frequent_set = set(texts)

    def _shared_table(self, key: tuple) -> str:
        """Where a candidate set is shared: the frequent queries' sets, which the feed keeper retrieves
        for a new version before the workers load it, one after another, minutes later, are kept apart
        from the answers, which 500 requests/s turn over within those minutes."""
        searched, _, filters = key
        return "kept" if filters == "None" and searched in self._frequent_set else "answers"

    def _shared_candidates(self, key: tuple) -> CandidateSet | None:
        if self._shared is None:
            return None
        shared, scope = self._shared
        data = shared.get(scope, ("candidates",) + key, self.changes_stamp, table=self._shared_table(key))
        if data is None:
            return None
        from shoprec.search.lexical import LexicalHit

        (query, ids, features, lexical, terms, semantic_list, rrf, scores, highlights, personal_inputs) = pickle.loads(data)
        hits = {pid: LexicalHit(id=pid, score=score, matched_terms=matched, _terms=terms, _index=self.lexical)
                for pid, score, matched in lexical}
        return CandidateSet(query=query, ids=ids, features=features, lexical=hits, semantic_ids=set(semantic_list),
                            rrf=rrf, semantic_list=semantic_list, scores=scores, highlights=highlights,
                            personal_inputs=personal_inputs)

    def _share(self, key: tuple, stamp: int, candidates: CandidateSet) -> None:
        if self._shared is None:
            return
        shared, scope = self._shared
        first = next(iter(candidates.lexical.values()), None)
        data = pickle.dumps((candidates.query, candidates.ids, candidates.features,
                             [(h.id, h.score, h.matched_terms) for h in candidates.lexical.values()],
                             first._terms if first is not None else [], candidates.semantic_list, candidates.rrf,
                             candidates.scores, candidates.highlights, candidates.personal_inputs), protocol=5)
        shared.put(scope, ("candidates",) + key, stamp, data, table=self._shared_table(key))

    def warm(self, limit: int | None = None, k: int = 20, pace: Callable[[Callable[[], Any]], Any] | None = None) -> int:
        """Search the most frequent past queries before any shopper types them (their candidates,
        shopper-free ranking, facets and first page's highlights are kept); returns how many.

        pace: runs each query's search (e.g. `shoprec.engine.Pacer`, to leave CPU to requests)."""
        limit = self.config.warm_queries if limit is None else limit
        texts = self.frequent_queries[: min(limit, self._retrieved.size)]
        run = pace or (lambda step: step())
        for text in texts:
            run(lambda: self.search(text, k=k, record=False))
        return len(texts)

    # -- retrieval ---------------------------------------------------------------------------
    def retrieve(self, query: str, filters: Any = None, personalize: Personalize | None = None,
                 prior: Callable[[list[str]], np.ndarray] | None = None, query_vector: np.ndarray | None = None,
                 restrict_to: Sequence[str] | None = None, lexical_query: str | None = None,
                 reuse: CandidateSet | None = None) -> CandidateSet:
        """Lexical + semantic candidates of `query` with their feature rows (no ranking yet).

        lexical_query: the text sent to the lexical index (e.g. with synonyms), default `query`.
        restrict_to: compute features for exactly these ids instead of the retrieved union.
        reuse: take the lexical and semantic hit lists of an earlier call for the same query."""
        from shoprec.search.filters import as_filters

        c = self.config
        filters = as_filters(filters)
        qvec = query_vector if query_vector is not None else self.encoder.encode_queries([query])[0]
        qvec = self.centering.query(qvec, query)
        if reuse is not None:
            lexical_hits, sem_ids = list(reuse.lexical.values()), list(reuse.semantic_list)
        else:
            text = lexical_query if lexical_query is not None else query
            lexical_hits = self.lexical.search(text, k=c.lexical_k, filters=filters, fuzzy=c.fuzzy) if text else []
            sem_ids, _ = self.vectors.search_one(qvec, c.semantic_k, self._allowed_ids(filters))
        lexical = {h.id: h for h in lexical_hits}
        lex_ids = [h.id for h in lexical_hits]
        fused_ids, fused = reciprocal_rank_fusion([lex_ids, sem_ids], k=c.rrf_k)
        if restrict_to is not None:
            # Score exactly these products (e.g. a query's judged products in a rerank evaluation).
            rrf_of = dict(zip(fused_ids, fused.tolist()))
            ids = [i for i in dict.fromkeys(restrict_to) if i in self.catalog]
            rrf = np.array([rrf_of.get(i, 0.0) for i in ids])
        else:
            keep = [j for j, pid in enumerate(fused_ids) if pid in self.catalog]
            ids = [fused_ids[j] for j in keep]
            rrf = fused[keep]
        found, vecs = self.vectors.vectors_for(ids)
        cosines = np.where(found, vecs @ qvec, 0.0).astype(np.float32)
        q_terms = list(dict.fromkeys(match_terms(query)))
        weights = dict(zip(q_terms, query_term_weights(q_terms, self._df, len(self.catalog))))
        signals = np.array([[self.catalog[i].get("popularity") or np.nan, self.catalog[i].get("rating") or np.nan,
                             self.catalog[i].get("price") if self.catalog[i].get("price") is not None else np.nan]
                            for i in ids], np.float32).reshape(len(ids), 3)
        features = build_features(
            query, ids, [self._title_terms.get(i, []) for i in ids],
            {h.id: (r, float(h.score), len(getattr(h, "matched_terms", []) or [])) for r, h in enumerate(lexical_hits)},
            {pid: r for r, pid in enumerate(sem_ids)}, cosines, rrf, signals,
            personal=personalize(ids) if personalize is not None and ids else None,
            prior=prior(ids) if prior is not None and ids else None,
            term_weights=weights, lexical_k=c.lexical_k, semantic_k=c.semantic_k, avg_title_len=self._avg_title_len,
        )
        return CandidateSet(query=query, ids=ids, features=features, lexical=lexical, semantic_ids=set(sem_ids),
                            rrf=rrf, semantic_list=list(sem_ids))

    def rank(self, candidates: CandidateSet) -> np.ndarray:
        """Scores of the candidates (blend, or RRF plus a personal boost). (n,) float64."""
        if not candidates.ids:
            return np.zeros(0)
        return self._score_rows(candidates.features, candidates.rrf)

    def _score_rows(self, features: np.ndarray, rrf: np.ndarray | None) -> np.ndarray:
        """Each row's score depends on that row alone: (n, len(FEATURE_NAMES)), (n,) -> (n,) float64."""
        if self.blend is not None:
            return np.asarray(self.blend.predict(features), np.float64)
        scores = np.asarray(rrf, np.float64).copy()
        personal = features[:, FEATURE_NAMES.index("personal")]
        if np.isfinite(personal).any():
            scores += self.config.personal_weight * np.nan_to_num(personal) / (self.config.rrf_k + 1.0)
        return scores

    def _personal_scores(self, candidates: CandidateSet, personalize) -> np.ndarray:
        """Scores of a (cached) candidate set, for one shopper when `personalize` is given; the
        shopper-free scores are kept on the set (a 300-tree blend costs ~1.7 ms for 400 rows)."""
        if personalize is None or not candidates.ids:
            if candidates.scores is None:
                candidates.scores = self.rank(candidates)
            return candidates.scores
        features = candidates.features.copy()
        if isinstance(personalize, ShopperAffinity):
            personal = personalize.of_candidates(self._personal_inputs(candidates))
        else:
            personal = personalize(candidates.ids)
        features[:, FEATURE_NAMES.index("personal")] = personal
        return self._score_rows(features, candidates.rrf)

    def _personal_inputs(self, candidates: CandidateSet) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """The candidates' vectors (n, dim) and category codes (n, depth) with {category: code}.

        The codes are kept with the candidate set (retrieval makes them, so warmed sets have them);
        the vectors are looked up each time (kept, they would cost 1.5 KB per candidate)."""
        return (self.vectors.vectors_for(candidates.ids)[1], *self._category_codes(candidates))

    def _category_codes(self, candidates: CandidateSet) -> tuple[np.ndarray, dict[str, int]]:
        if candidates.personal_inputs is None:
            paths = [self.catalog[i]["category"] if i in self.catalog else [] for i in candidates.ids]
            names: dict[str, int] = {}
            codes = np.full((len(paths), max((len(p) for p in paths), default=0) or 1), -1, np.int32)
            for row, path in enumerate(paths):
                for j, category in enumerate(path):
                    codes[row, j] = names.setdefault(category, len(names))
            candidates.personal_inputs = (codes, names)
        return candidates.personal_inputs

    def _allowed_ids(self, filters: Any) -> set[str] | None:
        """Product ids that pass `filters` (None: no filter), checked on the catalog metadata.

        Cached per distinct filter until the catalog changes."""
        if filters is None or filters.is_empty():
            return None
        key = filters.model_dump_json()
        allowed = self._filter_cache.get(key)
        if allowed is None:
            allowed = {pid for pid, row in self.catalog.items() if filters.matches(row)}
            if len(self._filter_cache) >= 64:
                self._filter_cache.clear()
            self._filter_cache[key] = allowed
        return allowed

    # -- the facade --------------------------------------------------------------------------
    def search(self, query: str, user_profile: Any = None, filters: Any = None, k: int = 20,
               offset: int = 0, record: bool = True) -> RankedList:
        """Ranked products for a shopper's query (`record`: count it if nothing matched).

        user_profile: None, a callable ids -> (n,) affinity, or a dict with "vector" (dim,) and/or
        "categories" {category: weight}. filters: a `SearchFilters` or a dict of its fields (category, brand,
        price_min, price_max, available). info carries the corrected query ("did_you_mean"),
        timings and whether the semantic fallback was used.
        """
        t0 = time.perf_counter()
        if k < 0 or offset < 0:
            raise ShoprecError("k and offset must be >= 0")
        original = normalize_text(query)
        if not original:
            return self._browse(filters, user_profile, k, offset, t0)
        info: dict[str, Any] = {"query": original}
        searched = _searched_text(original, self.query_data if self.config.spelling else None)
        if searched != original:
            info["did_you_mean"] = searched
        expanded = self.query_data.expand(searched) if self.config.synonyms else searched
        if expanded != searched:
            info["expanded_query"] = expanded
        info["searched_query"] = searched

        personalize = self._personalizer(user_profile) if self.blend is None or self.blend.use_personal else None
        key, epoch, stamp = (searched, expanded, repr(filters)), self._epoch, self.changes_stamp
        candidates = self._retrieved.get(key, epoch)
        retrieved = False
        if candidates is None:  # the shopper-independent part, reused by every shopper typing this query
            candidates = self._shared_candidates(key)
            if candidates is None:
                candidates = self.retrieve(searched, filters, None, lexical_query=expanded)
                self._category_codes(candidates)  # for personalised searches of the query to come
                candidates.scores = self.rank(candidates)  # the shopper-free scores, shared with the set
                retrieved = True
            self._retrieved.put(key, epoch, candidates)
        scores = self._personal_scores(candidates, personalize)
        order = np.argsort(-scores, kind="stable")
        ids = [candidates.ids[i] for i in order]
        ranked_scores = scores[order]
        if not candidates.lexical:
            # Nothing matched lexically: show close semantic matches only, and log the query.
            info["zero_result"] = True
            info["fallback"] = "semantic"
            cos = candidates.column("sem_cosine")[order]
            floor = float(cos.max(initial=0.0)) - self.config.fallback_margin
            if not self.centering.active:  # the absolute floor is calibrated on raw E5 cosines
                floor = max(self.config.fallback_min_cosine, floor)
            keep = cos >= floor
            ids = [i for i, ok in zip(ids, keep) if ok]
            ranked_scores = ranked_scores[keep]
            if record:
                self.query_data.log_zero_result(original)
        rule_reasons: dict[str, str] = {}
        if self.rules:
            from shoprec.search.filters import as_filters

            ids, ranked_scores, rule_reasons = self._apply_rules(searched, as_filters(filters), ids, ranked_scores)
        total = len(ids)
        page = range(offset, min(offset + k, total))
        position = {pid: i for i, pid in enumerate(candidates.ids)}
        hits = [self._hit(ids[i], float(ranked_scores[i]), candidates, position.get(ids[i]), rule_reasons) for i in page]
        id_set = hash(frozenset(ids))  # an int: the key must not keep 200 strings alive per entry
        facets = self._facets_of.get((key, id_set), epoch)
        if facets is None:
            facets = self._facets(searched, filters, ids)
            self._facets_of.put((key, id_set), epoch, facets)
        if retrieved:  # with the first page's highlights
            self._share(key, stamp, candidates)
        info["took_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        info["ranker"] = "blend" if self.blend is not None else "rrf"
        return RankedList(hits=hits, total=total, facets=facets, info=info)

    def _browse(self, filters: Any, user_profile: Any, k: int, offset: int, t0: float) -> RankedList:
        """An empty query lists every product that passes `filters` (a category page): most popular
        first, nudged by the shopper's affinities when a profile is given."""
        from shoprec.search.filters import as_filters

        filters = as_filters(filters)
        allowed = self._allowed_ids(filters)
        ids = list(self.catalog) if allowed is None else [pid for pid in self.catalog if pid in allowed]
        scores = np.array([float(self.catalog[pid].get("popularity") or 0.0) for pid in ids], np.float64)
        scores = np.log1p(np.maximum(scores, 0.0))
        personalize = self._personalizer(user_profile)
        if personalize is not None and ids:
            scores = scores + np.nan_to_num(np.asarray(personalize(ids), np.float64))
        order = np.argsort(-scores, kind="stable")
        page = order[offset:offset + k]
        hits = [Hit(id=ids[j], score=float(scores[j]), reason="in this selection, by popularity",
                    product=dict(self.catalog[ids[j]])) for j in page]
        info = {"query": "", "browse": True, "took_ms": round((time.perf_counter() - t0) * 1000, 2)}
        return RankedList(hits=hits, total=len(ids), facets=self._facets("", filters, [ids[j] for j in order]), info=info)

    def _hit(self, pid: str, score: float, candidates: CandidateSet, row: int | None, rule_reasons: dict[str, str]) -> Hit:
        lexical_hit = candidates.lexical.get(pid)
        sources: dict[str, float] = {}
        if row is not None:
            sources = {"lexical": float(candidates.features[row, FEATURE_NAMES.index("lex_score")]),
                       "semantic": float(candidates.features[row, FEATURE_NAMES.index("sem_cosine")])}
        if "pinned" in rule_reasons.get(pid, ""):
            reason = rule_reasons[pid]  # "pinned by rule <id> at <position>"
        elif lexical_hit is not None and getattr(lexical_hit, "matched_terms", None):
            reason = "matched: " + ", ".join(dict.fromkeys(lexical_hit.matched_terms))
        elif pid in candidates.semantic_ids:
            reason = "semantic match"
        else:
            reason = "matched"
        if pid in rule_reasons and "pinned" not in rule_reasons[pid]:
            reason = f"{reason}; {rule_reasons[pid]}"
        highlights = candidates.highlights.get(pid)
        if highlights is None:
            highlights = candidates.highlights[pid] = dict(lexical_hit.highlights) if lexical_hit is not None else {}
        product = self.catalog.get(pid)
        return Hit(id=pid, score=score, reason=reason, sources=sources, highlights=dict(highlights),
                   product=dict(product) if product else None)

    def _personalizer(self, profile: Any) -> Personalize | None:
        if profile is None:
            return None
        if callable(profile):
            return profile
        vector = profile.get("vector") if isinstance(profile, Mapping) else None
        categories = profile.get("categories") if isinstance(profile, Mapping) else None
        if vector is None and not categories:
            return None
        return ShopperAffinity(self, vector, categories)

    def set_rules(self, rules: Iterable[Any]) -> None:
        """Merchandising rules (`shoprec.search.rules.Rule`) applied to every search from now on."""
        self.rules = list(rules)
        self._epoch += 1

    def _apply_rules(self, query: str, filters: Any, ids: list[str], scores: np.ndarray
                     ) -> tuple[list[str], np.ndarray, dict[str, str]]:
        """Pin / boost / bury / hide; returns new ids, scores and {id: rule reason}."""
        from shoprec.search.rules import apply_rules

        category = getattr(filters, "category", None) if filters is not None else None
        result = apply_rules(query, category, list(zip(ids, scores.tolist())), self.rules)
        result = [(pid, score, reason) for pid, score, reason in result if pid in self.catalog]
        return ([pid for pid, _, _ in result], np.array([s for _, s, _ in result], np.float64),
                {pid: reason for pid, _, reason in result if reason})

    def _facets(self, query: str, filters: Any, ids: list[str]) -> dict[str, dict[str, int]]:
        """Counts per facet value over the result set (most frequent first)."""
        from shoprec.search.filters import price_band

        facets: dict[str, Counter] = {name: Counter() for name in self.config.facet_fields}
        for pid in ids:
            row = self.catalog.get(pid)
            if row is None:
                continue
            for name in self.config.facet_fields:
                if name == "category":
                    value = row["category"][-1] if row["category"] else ""
                elif name == "price_band":
                    value = price_band(row.get("price"))
                else:
                    value = row.get(name) or ""
                if value:
                    facets[name][str(value)] += 1
        # Ties by value, not by rank: the same result set shows the same facets to every shopper.
        return {name: dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:self.config.facet_top])
                for name, counts in facets.items() if counts}

    def suggest(self, prefix: str, k: int = 10) -> list[str]:
        """Query completions for a typed prefix."""
        return self.query_data.suggest(normalize_text(prefix), k)


def _catalog_row(p: Product, popularity: float | None) -> dict[str, Any]:
    return {"id": p.id, "title": p.title, "brand": p.brand, "category": list(p.category), "price": p.price,
            "rating": p.rating, "available": p.available, "image_url": p.image_url, "attributes": dict(p.attributes),
            "popularity": float(popularity) if popularity is not None else None}


def _save_catalog(path: Path, catalog: Mapping[str, dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(catalog.values())
    table = pa.table({
        "id": [r["id"] for r in rows], "title": [r["title"] for r in rows], "brand": [r["brand"] for r in rows],
        "category": [json.dumps(r["category"]) for r in rows], "price": pa.array([r["price"] for r in rows], pa.float64()),
        "rating": pa.array([r["rating"] for r in rows], pa.float64()), "available": [r["available"] for r in rows],
        "image_url": [r["image_url"] for r in rows], "attributes": [json.dumps(r["attributes"], default=str) for r in rows],
        "popularity": pa.array([r["popularity"] for r in rows], pa.float64()),
    })
    pq.write_table(table, path)


def _load_catalog(path: Path) -> dict[str, dict[str, Any]]:
    from shoprec.artifacts import parquet_rows

    out = {}
    for row in parquet_rows(path):
        row["category"] = json.loads(row["category"])
        row["attributes"] = json.loads(row["attributes"])
        out[row["id"]] = row
    return out


def _load_rules(path: Path) -> list[Any]:
    """Merchandising rules saved beside the search artifacts (rules.json: a list of rule objects)."""
    rules_file = path / "rules.json"
    if not rules_file.exists():
        return []
    from shoprec.search.rules import Rule

    try:
        return [Rule(**r) for r in json.loads(rules_file.read_text())]
    except Exception as exc:
        raise ShoprecError(f"{rules_file}: not a list of valid rules: {exc}") from exc


def train_blend(searcher: Searcher, judged: Mapping[str, Mapping[str, float]], config: Any = None) -> LearnedBlend:
    """Fit a learned blend from graded labels: {query: {product id: gain}} (judgments, or clicks
    turned into gains). Candidates not labelled count as gain 0, as in the full-catalog protocol."""
    from shoprec.search.hybrid import BlendConfig

    features, gains = [], []
    for query, labels in judged.items():
        candidates = searcher.retrieve(query)
        features.append(candidates.features)
        gains.append(np.array([float(labels.get(pid, 0.0)) for pid in candidates.ids]))
    return LearnedBlend(config or BlendConfig()).fit(features, gains)


class QueryData:
    """Spelling correction, synonyms, suggestions and the zero-result log (query understanding),
    built from the catalog and past queries with `shoprec.search.query_understanding`."""

    def __init__(self, speller: Any = None, synonyms: Any = None, suggester: Any = None, zero_log: Any = None):
        from shoprec.search.query_understanding import ZeroResultLog

        self.speller, self.synonyms, self.suggester = speller, synonyms, suggester
        self.zero_log = zero_log if zero_log is not None else ZeroResultLog(None)

    @classmethod
    def empty(cls) -> "QueryData":
        return cls()

    @classmethod
    def build(cls, products: Sequence[Product], queries: Sequence[str], encoder: Encoder, path: Path,
              synonyms_file: str | None = None, mine_synonym_terms: int = 0, synonym_threshold: float = 0.95,
              default_synonyms: bool = False) -> "QueryData":
        """Fit the speller on catalog text + query log, the suggester on the query log + catalog
        phrases (categories, brands, titles), and synonyms from a file and (optionally) mined
        from language-model vectors of the `mine_synonym_terms` most frequent catalog words."""
        from shoprec.search.query_understanding import SpellingCorrector, Suggester, Synonyms
        from shoprec.text.tokenize import tokenize

        path.mkdir(parents=True, exist_ok=True)
        log = Counter(normalize_text(q) for q in queries if q and q.strip())
        texts = [p.title for p in products] + [p.brand for p in products if p.brand] + \
            [c for p in products for c in p.category]
        synonyms = Synonyms.from_file(DEFAULT_SYNONYMS) if default_synonyms else Synonyms()
        if synonyms_file:
            synonyms.load_lines(Path(synonyms_file).read_text(encoding="utf-8").splitlines(), source=str(synonyms_file))
        if mine_synonym_terms > 0:
            counts = Counter(t for p in products for t in set(tokenize(p.title)) if len(t) > 2 and not t.isdigit())
            terms = [t for t, _ in counts.most_common(mine_synonym_terms)]
            if len(terms) > 1:
                synonyms.mine_from_embeddings(terms, encoder.encode_items(terms), threshold=synonym_threshold)
        # Words the synonyms know are real words: "earphones" must expand to "earbuds", not be
        # "corrected" to the nearest catalog word ("headphones").
        vocabulary = [word for key, targets in synonyms.rules.items() for word in (key, *targets)]
        speller = SpellingCorrector().fit(texts + vocabulary, log.items())
        phrases = [c for p in products for c in p.category] + [p.brand for p in products if p.brand] + \
            [p.title for p in products]
        suggester = Suggester().fit(log.items(), phrases)
        speller.save(path / "spelling.json")
        suggester.save(path / "suggest.json")
        synonyms.save(path / "synonyms.json")
        return cls(speller, synonyms, suggester)

    @classmethod
    def load(cls, path: Path) -> "QueryData":
        from shoprec.search.query_understanding import SpellingCorrector, Suggester, Synonyms

        if not path.exists():
            return cls()
        speller = SpellingCorrector.load(path / "spelling.json") if (path / "spelling.json").exists() else None
        suggester = Suggester.load(path / "suggest.json") if (path / "suggest.json").exists() else None
        synonyms = Synonyms.load(path / "synonyms.json") if (path / "synonyms.json").exists() else None
        return cls(speller, synonyms, suggester)

    def correct(self, query: str) -> str:
        return self.speller.correct(query) if self.speller is not None else query

    def expand(self, query: str) -> str:
        if self.synonyms is None or not self.synonyms.size():
            return query
        return self.synonyms.expand_query(query)

    def suggest(self, prefix: str, k: int) -> list[str]:
        return list(self.suggester.suggest(prefix, k)) if self.suggester is not None else []

    @property
    def zero_results(self) -> dict[str, int]:
        """Zero-result queries seen by this searcher -> count."""
        return self.zero_log.counts()

    def log_zero_result(self, query: str) -> None:
        self.zero_log.record(query)
