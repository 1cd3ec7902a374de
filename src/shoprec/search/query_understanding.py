"""Query understanding: spelling correction, synonyms, query suggestions and the zero-result log.

- `SpellingCorrector`: per-word correction against the catalog vocabulary and the query log
  (edit distance <= 2, optimal-string-alignment so a swap counts 1, via rapidfuzz), preferring
  the closest then the most frequent word; known words, numbers and Chinese stay as typed.
- `Synonyms`: equivalence groups and one-way rules from a user file, from language-model vectors
  of catalog terms, and from session reformulations; `expand(tokens)` adds the synonyms.
- `Suggester`: prefix completion ranked by query-log popularity, then catalog phrases.
- `ZeroResultLog`: an append-only JSONL log of queries that found nothing, with counts.
"""

from __future__ import annotations

import heapq
import json
import re
import threading
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from shoprec.errors import ShoprecError
from shoprec.text.tokenize import is_cjk, normalize, token_spans, tokenize

_NUMBER = re.compile(r"^[\d.,]+$")
_SPACE = re.compile(r"\s+")


def _first(key: tuple) -> Any:
    return key[0]


def _normalize_query(text: str) -> str:
    return _SPACE.sub(" ", normalize(text)).strip()


def _write_json(path: Path, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path, kind: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShoprecError(f"{path}: {kind} file not found") from None
    except json.JSONDecodeError as exc:
        raise ShoprecError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise ShoprecError(f"{path}: not a {kind} file (kind={data.get('kind') if isinstance(data, dict) else None!r})")
    return data


# -- spelling ----------------------------------------------------------------------------------
_stemmer: Any = None


def _stem(words: Sequence[str]) -> list[str]:
    """English Snowball stems (tantivy's stemmer, as the lexical index uses), one per word."""
    global _stemmer
    if _stemmer is None:
        import tantivy

        _stemmer = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).filter(
            tantivy.Filter.stemmer("english")).build()
    words = [w for w in words]
    if not words:
        return []
    stems = _stemmer.analyze(" ".join(words))
    return stems if len(stems) == len(words) else [(_stemmer.analyze(w) or [w])[0] for w in words]


class SpellingConfig(BaseModel):
    """Spelling-correction options."""

    max_distance: int = Field(default=2, ge=0, le=3)
    min_length_1: int = 4  # words shorter than this are never corrected
    min_length_2: int = 8  # words this long may move 2 edits; shorter ones 1
    # A word seen only in the query log counts as known once it was searched this often.
    min_log_count: int = 5
    # Query-log occurrences weigh this much relative to one catalog occurrence.
    log_weight: float = 1.0
    # A word whose English stem is a known word's stem ("platforms", "plans") is not a typo.
    stem_known: bool = True


class SpellingCorrector:
    """Per-word spelling correction from catalog vocabulary + query-log frequencies."""

    def __init__(self, config: SpellingConfig | None = None):
        self.config = config or SpellingConfig()
        self.frequency: dict[str, float] = {}
        self._stems: set[str] = set()
        self._words: list[str] = []
        self._by_length: dict[int, list[str]] = {}

    def fit(self, catalog_texts: Iterable[str], query_log: Iterable[tuple[str, int]] = ()) -> "SpellingCorrector":
        """Learn the vocabulary. catalog_texts: titles, brands, ...; query_log: (query, count)."""
        catalog: Counter = Counter()
        for text in catalog_texts:
            catalog.update(t for t in tokenize(text) if self._correctable(t))
        log: Counter = Counter()
        for query, count in query_log:
            for token in set(tokenize(query)):
                if self._correctable(token):
                    log[token] += int(count)
        frequency: dict[str, float] = {w: float(c) for w, c in catalog.items()}
        for word, count in log.items():
            # Frequent log-only words (new brands, slang) become known; rare ones may be typos.
            if word in frequency or count >= self.config.min_log_count:
                frequency[word] = frequency.get(word, 0.0) + self.config.log_weight * count
        self.frequency = frequency
        self._index()
        return self

    def _index(self) -> None:
        self._words = sorted(self.frequency)
        self._stems = set(_stem(self._words)) if self.config.stem_known else set()
        by_length: dict[int, list[str]] = defaultdict(list)
        for word in self._words:
            by_length[len(word)].append(word)
        self._by_length = dict(by_length)

    @staticmethod
    def _correctable(token: str) -> bool:
        return bool(token) and not is_cjk(token) and not _NUMBER.match(token)

    def is_known(self, word: str) -> bool:
        """In the vocabulary, or (with `stem_known`) an inflection of a vocabulary word."""
        return word in self.frequency or (self.config.stem_known and _stem([word])[0] in self._stems)

    def correct_word(self, word: str) -> str:
        """The best vocabulary word within the allowed distance of `word` (lowercase), else `word`."""
        if word in self.frequency or not self._correctable(word) or len(word) < self.config.min_length_1:
            return word
        if any(ch.isdigit() for ch in word) or self.is_known(word):
            return word  # model numbers ("rx580") are not typos of words
        import rapidfuzz
        limit = min(self.config.max_distance, 2 if len(word) >= self.config.min_length_2 else 1)
        best: tuple[int, bool, float, str] | None = None
        for length in range(len(word) - limit, len(word) + limit + 1):
            candidates = self._by_length.get(length)
            if not candidates:
                continue
            for candidate, distance, _ in rapidfuzz.process.extract(
                    word, candidates, scorer=rapidfuzz.distance.OSA.distance, score_cutoff=limit, limit=None):
                # Closest first; then a kept first letter (typos rarely hit it: "trimer" is
                # "trimmer", not "primer"); then the most frequent word.
                key = (int(distance), candidate[0] != word[0], -self.frequency[candidate], candidate)
                if best is None or key < best:
                    best = key
        if best is not None and best[0] <= 1:
            return best[3]
        # Run-together words ("outdoorfurniture") beat a two-edit guess.
        split = self._split(word)
        if split is not None:
            return split
        return best[3] if best is not None else word

    def _split(self, word: str) -> str | None:
        """"a b" when `word` is two known words of >= 3 letters written together (most frequent pair)."""
        if len(word) < 6:
            return None
        best: tuple[float, str] | None = None
        for cut in range(3, len(word) - 2):
            left, right = word[:cut], word[cut:]
            if left in self.frequency and right in self.frequency:
                score = min(self.frequency[left], self.frequency[right])
                if best is None or score > best[0]:
                    best = (score, f"{left} {right}")
        return best[1] if best is not None else None

    def correct(self, query: str) -> str:
        """`query` with misspelt words replaced (case and punctuation of the rest kept)."""
        if not query or not self.frequency:
            return query
        pieces: list[str] = []
        position = 0
        for start, end, token in token_spans(query):
            token = token.replace("'", "").replace("’", "")
            fixed = self.correct_word(token)
            if fixed != token:
                pieces.append(query[position:start])
                pieces.append(fixed)
                position = end
        pieces.append(query[position:])
        return "".join(pieces)

    def save(self, path: str | Path) -> None:
        _write_json(Path(path), {"kind": "spelling", "config": self.config.model_dump(), "frequency": self.frequency})

    @classmethod
    def load(cls, path: str | Path) -> "SpellingCorrector":
        data = _read_json(Path(path), "spelling")
        self = cls(SpellingConfig(**data.get("config", {})))
        self.frequency = {str(k): float(v) for k, v in data["frequency"].items()}
        self._index()
        return self


# -- synonyms ----------------------------------------------------------------------------------
class Synonyms:
    """Synonym rules over token sequences; `expand` appends the synonyms of every matched phrase.

    rules: {"phrase": {"synonym phrase": source}}; a phrase is space-joined tokens. Equivalence
    groups become rules in every direction; one-way rules ("a => b") only from left to right.
    """

    def __init__(self) -> None:
        self.rules: dict[str, dict[str, str]] = {}
        self._max_words = 1

    def _key(self, text: str) -> str:
        return " ".join(tokenize(text))

    def add(self, phrase: str, synonym: str, source: str = "manual") -> None:
        """One-way rule: `phrase` also searches `synonym`."""
        key, value = self._key(phrase), self._key(synonym)
        if not key or not value or key == value:
            return
        self.rules.setdefault(key, {}).setdefault(value, source)
        self._max_words = max(self._max_words, len(key.split()))

    def add_group(self, phrases: Sequence[str], source: str = "manual") -> None:
        """Equivalent phrases: each searches all the others."""
        for a in phrases:
            for b in phrases:
                if a != b:
                    self.add(a, b, source)

    @classmethod
    def from_file(cls, path: str | Path) -> "Synonyms":
        """Read lines `a, b, c` (equivalent) and `a, b => c, d` (a and b also search c and d).

        Blank lines and lines starting with # are skipped; a malformed line raises an error
        naming the file and line.
        """
        self = cls()
        self.load_lines(Path(path).read_text(encoding="utf-8").splitlines(), source=str(path))
        return self

    def load_lines(self, lines: Iterable[str], source: str = "<lines>") -> "Synonyms":
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "=>" in line:
                left, _, right = line.partition("=>")
                lefts = [p.strip() for p in left.split(",") if p.strip()]
                rights = [p.strip() for p in right.split(",") if p.strip()]
                if not lefts or not rights or "=>" in right:
                    raise ShoprecError(f"{source}: line {number}: expected 'a, b => c, d', got {line!r}")
                for a in lefts:
                    for b in rights:
                        self.add(a, b, "file")
            else:
                group = [p.strip() for p in line.split(",") if p.strip()]
                if len(group) < 2:
                    raise ShoprecError(f"{source}: line {number}: a synonym group needs 2+ comma-separated terms")
                self.add_group(group, "file")
        return self

    def mine_from_embeddings(self, terms: Sequence[str], vectors: np.ndarray, threshold: float = 0.9,
                             max_per_term: int = 3, block: int = 2048) -> int:
        """Add equivalences between catalog terms whose language-model vectors are close.

        terms: n strings; vectors: (n, dim) (normalised here); pairs with cosine >= threshold,
        at most `max_per_term` neighbours per term. -> number of rules added.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(terms):
            raise ShoprecError(f"vectors must be (len(terms)={len(terms)}, dim), got {vectors.shape}")
        if len(terms) < 2:
            return 0
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        keys = [self._key(t) for t in terms]
        before = self.size()
        neighbours = min(max_per_term + 1, len(terms))
        for start in range(0, len(terms), block):
            sims = vectors[start:start + block] @ vectors.T  # (block, n)
            rows = np.arange(sims.shape[0])
            sims[rows, rows + start] = -np.inf  # not a synonym of itself
            top = np.argpartition(-sims, neighbours - 1, axis=1)[:, :neighbours]
            for r, candidates in enumerate(top):
                for c in candidates:
                    if sims[r, c] >= threshold and keys[start + r] != keys[c]:
                        self.add(terms[start + r], terms[c], "embedding")
                        self.add(terms[c], terms[start + r], "embedding")
        return self.size() - before

    def mine_from_sessions(self, reformulations: Iterable[tuple[str, str]], min_count: int = 2) -> int:
        """One-way rules A => B from (query A, then query B in the same session with a click on B),
        kept when the pair occurred at least `min_count` times. -> number of rules added."""
        counts = Counter((_normalize_query(a), _normalize_query(b)) for a, b in reformulations)
        before = self.size()
        for (a, b), count in counts.items():
            if count >= min_count and a and b and a != b:
                self.add(a, b, "session")
        return self.size() - before

    def size(self) -> int:
        return sum(len(v) for v in self.rules.values())

    def expand(self, tokens: Sequence[str]) -> list[str]:
        """`tokens` followed by the tokens of every synonym of any phrase in them (no duplicates)."""
        tokens = [normalize(t) for t in tokens]
        out = list(tokens)
        seen = set(tokens)
        for n in range(min(self._max_words, len(tokens)), 0, -1):
            for i in range(len(tokens) - n + 1):
                for synonym in self.rules.get(" ".join(tokens[i:i + n]), ()):
                    for token in synonym.split():
                        if token not in seen:
                            seen.add(token)
                            out.append(token)
        return out

    def expand_query(self, query: str) -> str:
        """The query with the tokens of its synonyms appended (space-joined)."""
        return " ".join(self.expand(tokenize(query)))

    def save(self, path: str | Path) -> None:
        _write_json(Path(path), {"kind": "synonyms", "rules": self.rules})

    @classmethod
    def load(cls, path: str | Path) -> "Synonyms":
        data = _read_json(Path(path), "synonyms")
        self = cls()
        for key, values in data["rules"].items():
            for value, source in values.items():
                self.rules.setdefault(key, {})[value] = source
                self._max_words = max(self._max_words, len(key.split()))
        return self


# -- suggestions -------------------------------------------------------------------------------
class Suggester:
    """Query completion: query-log queries first (by count), then catalog phrases (by frequency).

    A candidate matches a prefix when the prefix starts the candidate or starts any of its words
    (token boundaries from `tokenize`, so Chinese words count too); whole-candidate matches come
    before word-inside matches within each group.
    """

    def __init__(self) -> None:
        self.queries: list[tuple[str, int]] = []  # (query, count), most frequent first
        self.phrases: list[tuple[str, int]] = []  # (catalog phrase, frequency), most frequent first
        self._keys: list[str] = []
        self._texts: list[str] = []
        self._owner = np.zeros(0, np.int64)
        self._inside = np.zeros(0, bool)

    def fit(self, query_log: Iterable[tuple[str, int]], catalog_terms: Iterable[str] = ()) -> "Suggester":
        """query_log: (query, count) pairs (repeats add up); catalog_terms: phrases, repeats add up."""
        log: Counter = Counter()
        for query, count in query_log:
            query = _normalize_query(query)
            if query and int(count) > 0:
                log[query] += int(count)
        catalog = Counter(_normalize_query(t) for t in catalog_terms)
        catalog.pop("", None)
        self.queries = sorted(log.items(), key=lambda kv: (-kv[1], kv[0]))
        self.phrases = sorted(((p, c) for p, c in catalog.items() if p not in log), key=lambda kv: (-kv[1], kv[0]))
        self._index()
        return self

    def _candidates(self) -> list[str]:
        return [q for q, _ in self.queries] + [p for p, _ in self.phrases]

    def _index(self) -> None:
        """Every query and catalog phrase, and each of their word-start suffixes, in sorted order."""
        self._texts = self._candidates()
        keys: list[tuple[str, int, bool]] = []
        for rank, text in enumerate(self._texts):
            keys.append((text, rank, False))
            starts = set()
            lowered = text
            cursor = 0
            for token in tokenize(text):
                at = lowered.find(token, cursor)
                if at < 0:
                    at = lowered.find(token)  # jieba search mode repeats sub-words
                else:
                    cursor = at + 1
                if at > 0:
                    starts.add(at)
            for at in sorted(starts):
                keys.append((text[at:], rank, True))
        # Sorted in slices and merged: one sort of ~400,000 keys held the interpreter for 0.3 s
        # while a serving process loaded a new version beside its requests.
        size = 20_000
        slices = [sorted(keys[i:i + size], key=_first) for i in range(0, len(keys), size)]
        keys = list(heapq.merge(*slices, key=_first)) if len(slices) > 1 else (slices[0] if slices else [])
        self._keys = [k for k, _, _ in keys]
        self._owner = np.array([r for _, r, _ in keys], np.int64)
        self._inside = np.array([i for _, _, i in keys], bool)

    def suggest(self, prefix: str, k: int = 10) -> list[str]:
        """Up to `k` completions of `prefix` (log queries by popularity, then catalog phrases)."""
        prefix = _normalize_query(prefix)
        if not prefix or k <= 0 or not self._keys:
            return []
        lo = bisect_left(self._keys, prefix)
        hi = bisect_left(self._keys, prefix + "\U0010ffff", lo)
        if lo >= hi:
            return []
        owners = self._owner[lo:hi]
        n_queries = len(self.queries)
        # Order: log before catalog, whole-prefix before word-inside, then popularity rank.
        in_catalog = owners >= n_queries
        order_key = (in_catalog.astype(np.int64) * 2 + self._inside[lo:hi]) * (len(self._owner) + 1) + owners
        # A candidate owns up to one key per word start; the best few keys usually cover k owners.
        take = min(len(order_key), 4 * k + 64)
        for attempt in (take, len(order_key)):
            nearest = np.argpartition(order_key, attempt - 1)[:attempt] if attempt < len(order_key) \
                else np.arange(len(order_key))
            nearest = nearest[np.argsort(order_key[nearest], kind="stable")]
            best: dict[int, int] = {}
            for i in nearest.tolist():
                owner = int(owners[i])
                if owner not in best:
                    best[owner] = int(order_key[i])
                    if len(best) >= k:
                        break
            if len(best) >= k or attempt == len(order_key):
                break
        return [self._texts[o] for o in sorted(best, key=best.__getitem__)]

    def hot_queries(self, k: int = 10) -> list[tuple[str, int]]:
        """The `k` most searched queries with their counts."""
        return list(self.queries[: max(k, 0)])

    def save(self, path: str | Path) -> None:
        _write_json(Path(path), {"kind": "suggester", "queries": self.queries, "phrases": self.phrases})

    @classmethod
    def load(cls, path: str | Path) -> "Suggester":
        data = _read_json(Path(path), "suggester")
        self = cls()
        self.queries = [(str(q), int(c)) for q, c in data["queries"]]
        self.phrases = [(str(p), int(c)) for p, c in data["phrases"]]
        self._index()
        return self


# -- zero-result log ---------------------------------------------------------------------------
class ZeroResultLog:
    """Queries that found nothing: an append-only JSONL file (one {"query", "at"} per line).

    With `path=None` the log is kept in memory only. `counts()` / `top(k)` aggregate for the admin.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._counts: Counter = Counter()
        if self.path is not None and self.path.exists():
            with self.path.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        self._counts[json.loads(line)["query"]] += 1
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise ShoprecError(f"{self.path}: line {number}: not a zero-result record") from None

    def record(self, query: str) -> None:
        """Append one zero-result occurrence of `query` (normalised; empty queries are ignored)."""
        query = _normalize_query(query)
        if not query:
            return
        with self._lock:
            self._counts[query] += 1
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                record = {"query": query, "at": datetime.now(timezone.utc).isoformat()}
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def top(self, k: int = 50) -> list[tuple[str, int]]:
        """The `k` most frequent zero-result queries, most frequent first."""
        with self._lock:
            return sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(k, 0)]
