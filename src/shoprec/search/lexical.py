"""Lexical product search over a tantivy index: BM25 with field boosts, phrase boost, typo
tolerance, filters and facets computed inside tantivy, highlights and matched terms.

Text is tokenised in Python with `shoprec.text.tokenize.tokenize` (jieba for Chinese) and indexed
as space-joined tokens through a whitespace + lowercase (+ English stemmer) analyzer, so Chinese
and English go through the same BM25 machinery. Per query word the score is the best field match
(a disjunction-max over title > brand > category > attributes > description, each boosted), the
words are summed (OR: more matched words rank higher), and a phrase query over the title adds a
bonus when the words appear adjacently. A query word the catalog vocabulary lacks (a typo) is also
matched by tantivy fuzzy term queries (edit distance 1 for words of >= 4 characters, 2 for >= 8);
tantivy scores fuzzy matches with a constant, scaled here by `LexicalConfig.fuzzy_weight`.

Folder layout (`path`): the tantivy files plus `lexical.json` (config and format version).
"""

from __future__ import annotations

import html
import re
import shutil
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from shoprec.data.schemas import Product
from shoprec.errors import ShoprecError
from shoprec.search.filters import (
    PRICE_BAND_BOUNDS,
    SearchFilters,
    as_filters,
    attribute_key,
    attribute_pairs,
    category_key,
    category_parts,
    price_band,
)
from shoprec.text.tokenize import ENGLISH_STOPWORDS, is_cjk, normalize, tokenize

FORMAT_VERSION = 1
_ANALYZER = "shoprec_tokens"
_RAW_ANALYZER = "shoprec_raw_tokens"
# Unstemmed copies of the short fields, for fuzzy matching: a misspelling's stem is unreliable
# ("earbds" is 1 edit from "earbuds" but 2 from the stem "earbud"; "wireles" stems to "wirel" ~ "wire").
_FUZZY_FIELDS = ("title", "brand", "category", "attributes")
_TEXT_FIELDS = ("title", "brand", "category", "attributes", "description")
_MAX_TOKEN_CHARS = 64  # longer "words" are noise (and tantivy terms have a byte limit)
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)*$")
FACET_FIELDS = ("category", "category_prefix", "brand", "price_band", "available", "attributes")


class LexicalConfig(BaseModel):
    """Field boosts and matching options of the lexical index (saved with the index)."""

    title_boost: float = 3.0
    brand_boost: float = 2.0
    category_boost: float = 1.5
    attributes_boost: float = 1.2
    description_boost: float = 0.5
    # Share of the non-best fields' scores added to a word's best field score (disjunction max).
    tie_breaker: float = Field(default=0.2, ge=0.0, le=1.0)
    # Boost of the title phrase query (all query words adjacent, in order).
    phrase_boost: float = 0.4
    phrase_slop: int = Field(default=0, ge=0)
    # Constant score of a fuzzy (typo) match, times the field boost; tantivy does not BM25-score them.
    fuzzy_weight: float = 2.5
    fuzzy_min_length_1: int = 4
    fuzzy_min_length_2: int = 8
    fuzzy_fields: list[str] = list(_FUZZY_FIELDS)  # a subset of title, brand, category, attributes
    stem: bool = True  # English Snowball stemming inside the tantivy analyzer
    drop_stopwords: bool = True
    max_query_terms: int = 32
    highlight_open: str = "<mark>"
    highlight_close: str = "</mark>"
    snippet_chars: int = 160
    writer_heap_bytes: int = 50_000_000
    writer_threads: int = 1
    # The serving processes of a machine share a version's index and each applies every catalog
    # change to it, often at the same moment (all of them replay the journal when they start): a
    # write waits this long for another process's writer before it fails.
    writer_wait_s: float = 60.0

    def boosts(self) -> dict[str, float]:
        return {"title": self.title_boost, "brand": self.brand_boost, "category": self.category_boost,
                "attributes": self.attributes_boost, "description": self.description_boost}


@dataclass(slots=True)
class LexicalHit:
    """One lexical match: product id, BM25 score, the words it matched and highlighted fields.

    `highlights` ({field: HTML with matched words in <mark>}) is computed on access, so a caller
    that shows a page of 20 out of a few hundred candidates pays for 20; it is not kept, since hits
    live on in the searcher's per-query cache."""

    id: str
    score: float
    # A tuple of strings, which the garbage collector stops tracking: hits live on in the per-query cache.
    matched_terms: tuple[str, ...] = ()
    # The query's terms, from which `marked` is worked out (with the stored document) when needed;
    # hits are cached per query, so they keep no copy of the document.
    _terms: list["_QueryTerm"] = field(default_factory=list, repr=False, compare=False)
    _index: "LexicalIndex | None" = field(default=None, repr=False, compare=False)

    @property
    def marked(self) -> dict[str, tuple[str, frozenset[str]]]:
        """field -> (display text, lowercase tokens to mark)."""
        if self._index is None or not self._terms:
            return {}
        return self._index._explain(self._terms, self._index.stored(self.id))[1]

    @property
    def highlights(self) -> dict[str, str]:
        if self._index is None:
            return {}
        return {name: self._index._highlight(text, set(words), snippet=name == "description")
                for name, (text, words) in self.marked.items()}


@dataclass
class _TypoMatches:
    """Which document tokens are within the edit distance of which typo-tolerant query words:
    a memo for one query's terms."""

    found: dict[str, tuple[int, ...]] = field(default_factory=dict)  # token -> indices among the typo-tolerant words
    close: set[str] = field(default_factory=set)  # the tokens matching any


@dataclass
class _QueryTerm:
    word: str  # the query word as tokenised (lowercase)
    stem: str  # the indexed form
    fuzzy_distance: int = 0  # > 0: the catalog lacks the word and fuzzy queries were added


def _flatten_attributes(attributes: Mapping[str, Any]) -> str:
    return " ; ".join(f"{k} {v}" for k, v in attribute_pairs(attributes))


def _tokens_for_index(text: str, drop_stopwords: bool) -> list[str]:
    tokens = [t for t in tokenize(text) if len(t) <= _MAX_TOKEN_CHARS]
    if drop_stopwords:
        tokens = [t for t in tokens if t not in ENGLISH_STOPWORDS]
    return tokens


class LexicalIndex:
    """A tantivy BM25 index of products on disk, searchable with filters, facets and highlights."""

    def __init__(self, path: Path, index: Any, config: LexicalConfig):
        self.path = Path(path)
        self.config = config
        self._index = index
        self._schema = index.schema
        self._write_lock = threading.Lock()
        self._analyzer = self._make_analyzer(config)

    # -- schema and construction ------------------------------------------------------------
    @staticmethod
    def _make_schema() -> Any:
        import tantivy

        builder = tantivy.SchemaBuilder()
        builder.add_text_field("id", stored=True, tokenizer_name="raw")
        builder.add_bytes_field("stored", stored=True)  # JSON of the display texts, for highlights
        for name in _TEXT_FIELDS:
            builder.add_text_field(f"{name}_t", stored=False, tokenizer_name=_ANALYZER, index_option="position")
        for name in _FUZZY_FIELDS:
            builder.add_text_field(f"{name}_r", stored=False, tokenizer_name=_RAW_ANALYZER, index_option="basic")
        builder.add_text_field("category_key", tokenizer_name="raw")  # normalised path prefixes
        builder.add_text_field("category_path", tokenizer_name="raw", fast=True)  # full path, as written
        builder.add_text_field("category_prefix", tokenizer_name="raw", fast=True)  # every prefix, as written
        builder.add_text_field("brand_key", tokenizer_name="raw")
        builder.add_text_field("brand_facet", tokenizer_name="raw", fast=True)
        builder.add_text_field("attr_key", tokenizer_name="raw", fast=True)  # "key=value", normalised
        builder.add_float_field("price", indexed=True, fast=True)
        builder.add_boolean_field("available", indexed=True, fast=True)
        return builder.build()

    @staticmethod
    def _make_analyzer(config: LexicalConfig) -> Any:
        import tantivy

        builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).filter(tantivy.Filter.lowercase())
        if config.stem:
            builder = builder.filter(tantivy.Filter.stemmer("english"))
        return builder.build()

    @classmethod
    def _attach(cls, path: Path, index: Any, config: LexicalConfig) -> "LexicalIndex":
        import tantivy

        index.register_tokenizer(_ANALYZER, cls._make_analyzer(config))
        index.register_tokenizer(_RAW_ANALYZER, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
                                 .filter(tantivy.Filter.lowercase()).build())
        return cls(path, index, config)

    @classmethod
    def build(cls, products: Iterable[Product], path: str | Path, config: LexicalConfig | None = None) -> "LexicalIndex":
        """Index `products` into a new folder `path` (replacing a previous lexical index there)."""
        import tantivy

        path = Path(path)
        config = config or LexicalConfig()
        if path.exists():
            if (path / "lexical.json").exists():
                shutil.rmtree(path)
            elif any(path.iterdir()):
                raise ShoprecError(f"{path}: folder is not empty and holds no lexical index; refusing to overwrite")
        path.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(cls._make_schema(), path=str(path), reuse=False)
        self = cls._attach(path, index, config)
        self._write(products, delete_first=False)
        (path / "lexical.json").write_bytes(orjson.dumps(
            {"format_version": FORMAT_VERSION, "config": config.model_dump()}, option=orjson.OPT_INDENT_2))
        return self

    @classmethod
    def open(cls, path: str | Path) -> "LexicalIndex":
        """Open an index written by `build`."""
        import tantivy

        path = Path(path)
        meta_file = path / "lexical.json"
        if not meta_file.exists():
            raise ShoprecError(f"{path}: no lexical index (lexical.json missing); run the build first")
        meta = orjson.loads(meta_file.read_bytes())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ShoprecError(f"{meta_file}: format_version {meta.get('format_version')} is not "
                               f"{FORMAT_VERSION}; rebuild the index")
        return cls._attach(path, tantivy.Index.open(str(path)), LexicalConfig(**meta["config"]))

    # -- writing ----------------------------------------------------------------------------
    def _analyzed(self, tokens: Sequence[str]) -> list[str]:
        """The indexed forms (lowercase, stemmed) of `tokens`, one per token."""
        if not tokens:
            return []
        out = self._analyzer.analyze(" ".join(tokens))
        if len(out) != len(tokens):  # tokens hold no whitespace, so this means a broken analyzer
            raise ShoprecError(f"analyzer returned {len(out)} tokens for {len(tokens)}")
        return out

    def _document(self, product: Product) -> Any:
        import tantivy

        path = category_parts(product.category)
        texts = {
            "title": product.title,
            "brand": product.brand,
            "category": " > ".join(path),
            "attributes": _flatten_attributes(product.attributes),
            "description": product.description,
        }
        doc = tantivy.Document()
        doc.add_text("id", product.id)
        stored_tokens: dict[str, str] = {}
        for name, text in texts.items():
            if text:
                tokens = " ".join(_tokens_for_index(text, self.config.drop_stopwords))
                doc.add_text(f"{name}_t", tokens)
                if name in _FUZZY_FIELDS:
                    doc.add_text(f"{name}_r", tokens)
                stored_tokens[name] = tokens
        # Tokens and their indexed forms are stored so that explaining a hit (matched words, marks)
        # needs no jieba or analyzer call per hit at query time.
        stems = self._analyzed([t for name in _TEXT_FIELDS for t in stored_tokens.get(name, "").split()])
        stored_stems, offset = {}, 0
        for name in _TEXT_FIELDS:
            n = len(stored_tokens.get(name, "").split())
            if n:
                stored_stems[name] = " ".join(stems[offset:offset + n])
                offset += n
        doc.add_bytes("stored", orjson.dumps({**texts, "tokens": stored_tokens, "stems": stored_stems}))
        for depth in range(1, len(path) + 1):
            doc.add_text("category_key", category_key(path[:depth]))
            doc.add_text("category_prefix", " > ".join(path[:depth]))
        if path:
            doc.add_text("category_path", " > ".join(path))
        if product.brand:
            doc.add_text("brand_key", normalize(product.brand).strip())
            doc.add_text("brand_facet", product.brand)
        for key, value in attribute_pairs(product.attributes):
            doc.add_text("attr_key", attribute_key(key, value))
        if product.price is not None and product.price == product.price:
            doc.add_float("price", float(product.price))
        doc.add_boolean("available", bool(product.available))
        return doc

    def _writer(self) -> Any:
        """The index's writer, once no other process holds the directory's writer lock."""
        deadline = time.monotonic() + self.config.writer_wait_s
        pause = 0.01
        while True:
            try:
                return self._index.writer(self.config.writer_heap_bytes, self.config.writer_threads)
            except ValueError as exc:  # tantivy: "Failed to acquire Lockfile: LockBusy"
                if "LockBusy" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(2 * pause, 0.2)

    def _write(self, products: Iterable[Product], delete_first: bool, delete_ids: Iterable[str] = ()) -> int:
        with self._write_lock:
            writer = self._writer()
            try:
                for pid in delete_ids:
                    writer.delete_documents_by_term("id", str(pid))
                latest: dict[str, Product] = {}
                for i, product in enumerate(products):
                    if not isinstance(product, Product):
                        raise ShoprecError(f"product #{i}: expected a Product, got {type(product).__name__}")
                    latest[product.id] = product  # the last version of a repeated id wins
                for product in latest.values():
                    if delete_first:
                        writer.delete_documents_by_term("id", product.id)
                    writer.add_document(self._document(product))
                writer.commit()
            except BaseException:
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()
            self._index.reload()
            return len(latest)

    def upsert(self, products: Iterable[Product]) -> int:
        """Add or replace products by id; committed and visible to the next search. -> count."""
        return self._write(products, delete_first=True)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove products by id; committed and visible to the next search. -> ids given."""
        ids = [str(i) for i in ids]
        self._write((), delete_first=False, delete_ids=ids)
        return len(ids)

    def __len__(self) -> int:
        return int(self._index.searcher().num_docs)

    # -- querying ---------------------------------------------------------------------------
    def _query_terms(self, query: str, searcher: Any, fuzzy: bool) -> list[_QueryTerm]:
        words = [t for t in tokenize(query) if len(t) <= _MAX_TOKEN_CHARS]
        if self.config.drop_stopwords:
            content = [t for t in words if t not in ENGLISH_STOPWORDS]
            words = content or words  # a query of only stopwords still searches them
        words = list(dict.fromkeys(words))[: self.config.max_query_terms]
        terms = []
        for word, stem in zip(words, self._analyzed(words)):
            term = _QueryTerm(word, stem)
            if fuzzy and not is_cjk(word) and not _NUMBER.match(word) and len(word) >= self.config.fuzzy_min_length_1:
                known = any(searcher.doc_freq(f"{name}_t", stem) > 0 for name in _TEXT_FIELDS)
                if not known:
                    term.fuzzy_distance = 2 if len(word) >= self.config.fuzzy_min_length_2 else 1
            terms.append(term)
        return terms

    def _text_query(self, terms: list[_QueryTerm]) -> Any:
        import tantivy

        Q = tantivy.Query
        schema = self._schema
        boosts = self.config.boosts()
        per_word = []
        for term in terms:
            alternatives = [Q.boost_query(Q.term_query(schema, f"{name}_t", term.stem), boost)
                            for name, boost in boosts.items() if boost > 0]
            if term.fuzzy_distance:
                for name in self.config.fuzzy_fields:
                    fuzzy = Q.fuzzy_term_query(schema, f"{name}_r", term.word, distance=term.fuzzy_distance,
                                               transposition_cost_one=True)
                    alternatives.append(Q.boost_query(fuzzy, boosts[name] * self.config.fuzzy_weight))
            per_word.append(Q.disjunction_max_query(alternatives, tie_breaker=self.config.tie_breaker))
        clauses = [(tantivy.Occur.Should, q) for q in per_word]
        exact = [t.stem for t in terms if not t.fuzzy_distance]
        if len(exact) >= 2 and self.config.phrase_boost > 0:
            phrase = Q.phrase_query(schema, "title_t", exact, slop=self.config.phrase_slop)
            clauses.append((tantivy.Occur.Should, Q.boost_query(phrase, self.config.phrase_boost * boosts["title"])))
        return Q.boolean_query(clauses)

    def _filter_queries(self, filters: SearchFilters | None) -> list[Any]:
        import tantivy

        Q = tantivy.Query
        if filters is None:
            return []
        schema = self._schema
        out = []
        key = filters.category_key()
        if key is not None:
            out.append(Q.term_query(schema, "category_key", key))
        brands = filters.brand_keys()
        if brands:
            out.append(Q.term_set_query(schema, "brand_key", brands))
        if filters.price_min is not None or filters.price_max is not None:
            out.append(Q.range_query(schema, "price", tantivy.FieldType.Float,
                                     float(filters.price_min) if filters.price_min is not None else None,
                                     float(filters.price_max) if filters.price_max is not None else None))
        if filters.available is not None:
            out.append(Q.term_query(schema, "available", bool(filters.available)))
        for options in filters.attribute_keys().values():
            out.append(Q.term_set_query(schema, "attr_key", options))
        return out

    def _full_query(self, query: str, filters: SearchFilters | None, fuzzy: bool, searcher: Any
                    ) -> tuple[Any, list[_QueryTerm], bool]:
        """(tantivy query, query terms, whether the query has text) for a user query + filters."""
        import tantivy

        Q = tantivy.Query
        has_text = bool(query and query.strip())
        terms = self._query_terms(query, searcher, fuzzy) if has_text else []
        if has_text and not terms:
            return Q.empty_query(), [], True  # only punctuation/emoji: nothing can match
        main = self._text_query(terms) if terms else Q.all_query()
        filter_queries = self._filter_queries(filters)
        if not filter_queries:
            return main, terms, has_text
        # Filters restrict without changing scores.
        clauses = [(tantivy.Occur.Must, main)] + [(tantivy.Occur.Must, Q.const_score_query(f, 0.0))
                                                  for f in filter_queries]
        return Q.boolean_query(clauses), terms, has_text

    def search(self, query: str, k: int = 100, filters: SearchFilters | Mapping[str, Any] | None = None,
               fuzzy: bool = True) -> list[LexicalHit]:
        """The top `k` products for `query` (BM25, boosts, phrase, typos) passing `filters`.

        An empty query browses: every product passing the filters, score 0. Never raises on the
        query text (query syntax is not interpreted; "AND", quotes and brackets are plain words).
        """
        filters = as_filters(filters)
        if k <= 0:
            return []
        searcher = self._index.searcher()
        tantivy_query, terms, has_text = self._full_query(query or "", filters, fuzzy, searcher)
        result = searcher.search(tantivy_query, limit=int(k), count=False)
        hits = []
        near = _TypoMatches()  # one query's, shared by its hits: their words repeat
        for score, address in result.hits:
            doc = searcher.doc(address)
            pid = doc.get_first("id")
            stored = orjson.loads(doc.get_first("stored") or b"{}")
            matched = tuple(self._matched_words(terms, stored, near)) if terms else ()
            hits.append(LexicalHit(id=pid, score=float(score) if has_text else 0.0, matched_terms=matched,
                                   _terms=terms, _index=self))
        return hits

    def facets(self, query: str, filters: SearchFilters | Mapping[str, Any] | None = None,
               fields: Sequence[str] = ("category", "brand", "price_band"), top: int = 20,
               fuzzy: bool = True) -> dict[str, dict[str, int]]:
        """Counts of facet values over every product matching `query` + `filters`.

        fields: "category" (full path "A > B > C"), "category_prefix" (every ancestor path),
        "brand", "price_band" ("<10", "<25", ..., "1000+"), "available" ("true"/"false"),
        "attributes" ("key=value", normalised). -> {field: {value: count}}, most frequent first.
        """
        filters = as_filters(filters)
        unknown = [f for f in fields if f not in FACET_FIELDS]
        if unknown:
            raise ShoprecError(f"unknown facet field(s) {unknown}; choose from {list(FACET_FIELDS)}")
        searcher = self._index.searcher()
        tantivy_query, _, _ = self._full_query(query or "", filters, fuzzy, searcher)
        terms_field = {"category": "category_path", "category_prefix": "category_prefix", "brand": "brand_facet",
                       "attributes": "attr_key", "available": "available"}
        # segment_size well above any realistic distinct-value count keeps counts exact across segments.
        size = max(int(top), 1)
        aggs: dict[str, Any] = {}
        for name in fields:
            if name == "price_band":
                ranges = [{"key": price_band(PRICE_BAND_BOUNDS[0] - 1), "to": PRICE_BAND_BOUNDS[0]}]
                for lo, hi in zip(PRICE_BAND_BOUNDS, PRICE_BAND_BOUNDS[1:]):
                    ranges.append({"key": price_band(lo), "from": lo, "to": hi})
                ranges.append({"key": price_band(PRICE_BAND_BOUNDS[-1]), "from": PRICE_BAND_BOUNDS[-1]})
                aggs[name] = {"range": {"field": "price", "ranges": ranges}}
            else:
                aggs[name] = {"terms": {"field": terms_field[name], "size": size, "segment_size": 100_000}}
        result = searcher.aggregate(tantivy_query, aggs) if aggs else {}
        out: dict[str, dict[str, int]] = {}
        for name in fields:
            buckets = result.get(name, {}).get("buckets", [])
            counts = {}
            for bucket in buckets:
                if bucket.get("doc_count", 0) <= 0:
                    continue
                key = bucket.get("key")
                if name == "available":
                    key = "true" if key in (1, True, "true", 1.0) else "false"
                counts[str(key)] = int(bucket["doc_count"])
            out[name] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size])
        return out

    def stored(self, pid: str) -> dict[str, Any]:
        """The stored display texts, tokens and stems of one product ({} if absent)."""
        import tantivy

        searcher = self._index.searcher()
        result = searcher.search(tantivy.Query.term_query(self._schema, "id", str(pid)), limit=1)
        if not result.hits:
            return {}
        return orjson.loads(searcher.doc(result.hits[0][1]).get_first("stored") or b"{}")

    # -- explanation ------------------------------------------------------------------------
    def _matched_words(self, terms: list[_QueryTerm], stored: Mapping[str, Any],
                       near: _TypoMatches | None = None) -> list[str]:
        """The query words this document matched: `_explain`'s first half, by set lookups when no
        query word needed typo tolerance (every candidate pays this; only the shown page is marked).

        near: `_explain`'s memo of typo matches, shared by the documents of one query."""
        stored_stems = stored.get("stems")
        if stored_stems is None or any(t.fuzzy_distance for t in terms):
            return self._explain(terms, stored, near)[0]
        present = set(" ".join(stored_stems.get(name, "") for name in _TEXT_FIELDS if stored.get(name)).split())
        stem_to_word = {t.stem: t.word for t in terms}
        return [word for stem, word in stem_to_word.items() if stem in present]

    def _explain(self, terms: list[_QueryTerm], stored: Mapping[str, Any],
                 near: _TypoMatches | None = None
                 ) -> tuple[list[str], dict[str, tuple[str, frozenset[str]]]]:
        """(matched query words, {field: (text, tokens to mark)}) for one hit.

        A document token matches a typo-tolerant query word within its edit distance (of the token
        or its stem); near: those matches already worked out for the same `terms`."""
        from rapidfuzz.distance import OSA

        near = _TypoMatches() if near is None else near
        stem_to_word = {t.stem: t.word for t in terms if not t.fuzzy_distance}
        fuzzy_terms = [t for t in terms if t.fuzzy_distance]
        stored_tokens = stored.get("tokens") or {}
        stored_stems = stored.get("stems")
        fields, token_lists = [], []
        for name in _TEXT_FIELDS:
            if stored.get(name):
                tokens = stored_tokens[name].split() if name in stored_tokens else \
                    _tokens_for_index(stored[name], self.config.drop_stopwords)
                fields.append(name)
                token_lists.append(tokens)
        if stored_stems is not None:
            stem_lists = [stored_stems.get(name, "").split() for name in fields]
        else:  # an index written before stems were stored: one analyzer call for every field
            all_stems = self._analyzed([t for tokens in token_lists for t in tokens])
            stem_lists, offset = [], 0
            for tokens in token_lists:
                stem_lists.append(all_stems[offset:offset + len(tokens)])
                offset += len(tokens)
        matched: dict[str, None] = {}
        marked: dict[str, tuple[str, frozenset[str]]] = {}
        for name, tokens, stems in zip(fields, token_lists, stem_lists):
            marked_words: set[str] = set()
            if not stem_to_word.keys().isdisjoint(stems):
                for token, stem in zip(tokens, stems):
                    word = stem_to_word.get(stem)
                    if word is not None:
                        marked_words.add(token)
                        matched.setdefault(word, None)
            if fuzzy_terms:
                unseen = set(tokens).difference(near.found)
                if unseen:
                    stem_of = dict(zip(tokens, stems))
                    for token in unseen:
                        found = near.found[token] = tuple(
                            j for j, term in enumerate(fuzzy_terms)
                            if abs(len(term.word) - len(token)) <= term.fuzzy_distance
                            and min(OSA.distance(term.word, token), OSA.distance(term.word, stem_of[token])) <= term.fuzzy_distance)
                        if found:
                            near.close.add(token)
                close = near.close.intersection(tokens).difference(marked_words)  # an exact match is no typo match
                if close:
                    in_order = [token for token in dict.fromkeys(tokens) if token in close]
                    for j in range(len(fuzzy_terms)):  # word by word, as the words came in the query
                        for token in in_order:
                            if j in near.found[token]:
                                marked_words.add(token)
                                matched.setdefault(token, None)
            if marked_words:
                marked[name] = (stored[name], frozenset(marked_words))
        return list(matched), marked

    def _highlight(self, text: str, words: set[str], snippet: bool) -> str:
        """HTML-escaped `text` with every occurrence of `words` (lowercase tokens) marked."""
        open_tag, close_tag = self.config.highlight_open, self.config.highlight_close
        text = text.replace("\x00", "").replace("\x01", "")
        ordered = sorted(words, key=len, reverse=True)  # longest first: "earbuds" before "earbud"
        latin = [w for w in ordered if not is_cjk(w)]
        cjk = [w for w in ordered if is_cjk(w)]
        alternatives = []
        if latin:
            # Tokens lost their apostrophes ("men's" -> "mens"): allow them back between letters.
            apostrophe = "['’]?" if ("'" in text or "’" in text) else ""
            forms = [apostrophe.join(map(re.escape, w)) if apostrophe else re.escape(w) for w in latin]
            alternatives.append(r"(?<![^\W_])(?:" + "|".join(forms) + r")(?![^\W_])")
        if cjk:
            alternatives.append("|".join(map(re.escape, cjk)))
        pattern = _highlight_pattern("|".join(alternatives))
        # Mark with control characters first, then escape, then turn the marks into tags.
        marked = pattern.sub(lambda m: f"\x00{m.group()}\x01", text)
        marked = html.escape(marked).replace("\x00", open_tag).replace("\x01", close_tag)
        if not snippet or len(text) <= self.config.snippet_chars:
            return marked
        # Long descriptions: a window of about snippet_chars around the first mark, cut at spaces
        # (tags and entities hold no spaces, so a cut never splits one).
        cut = marked.find(open_tag)
        start = max(0, cut - self.config.snippet_chars // 3)
        start = marked.rfind(" ", 0, start) + 1 if start > 0 else 0
        end = marked.find(" ", start + self.config.snippet_chars)
        end = len(marked) if end < 0 else end
        return ("…" if start > 0 else "") + marked[start:end] + ("…" if end < len(marked) else "")


@lru_cache(maxsize=1024)
def _highlight_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)
