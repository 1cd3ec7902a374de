"""Per-language centring: a query meets same-meaning products written in another language."""

import numpy as np

from shoprec.search.language import LanguageCentering, text_language


def _bilingual(rng, n_topics=20, dim=32, shift=3.0):
    """Each topic has an English and a Chinese item; every Chinese vector carries a shared offset."""
    topics = rng.normal(size=(n_topics, dim))
    offset = rng.normal(size=dim) * shift
    en = topics + 0.1 * rng.normal(size=topics.shape)
    zh = topics + offset + 0.1 * rng.normal(size=topics.shape)
    vectors = np.vstack([en, zh]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return topics, offset, vectors, ["en"] * n_topics + ["zh"] * n_topics


def test_text_language_detects_chinese():
    assert text_language("无线耳机") == "zh"
    assert text_language("wireless earbuds") == "en"
    assert text_language("Nexon 无线耳机 X2") == "zh"


def test_centring_lets_a_chinese_query_find_the_english_item_of_its_topic():
    rng = np.random.default_rng(0)
    topics, offset, vectors, languages = _bilingual(rng)
    n = len(topics)
    centering = LanguageCentering.fit(vectors, languages)
    assert centering.active
    centred = centering.items(vectors, languages)
    found_raw = found_centred = 0
    for t in range(n):
        query = topics[t] + offset  # a Chinese query about topic t
        query = (query / np.linalg.norm(query)).astype(np.float32)
        english = slice(0, n)
        found_raw += int(np.argmax(vectors[english] @ query) == t and np.argmax(vectors @ query) < n)
        q = centering.query(query, "无线耳机")
        found_centred += int(np.argmax(centred[english] @ q) == t)
        # among all items, the English twin now competes with the Chinese one
        order = np.argsort(-(centred @ q))
        assert t in order[:2] and t + n in order[:2]
    assert found_raw == 0  # without centring, a Chinese query's best match is always Chinese
    assert found_centred == n


def test_one_language_catalog_is_left_alone(tmp_path):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    centering = LanguageCentering.fit(vectors, ["en"] * 48 + ["zh"] * 2)  # 4%: below the share
    assert not centering.active
    assert centering.items(vectors, ["en"] * 50) is vectors
    centering.save(tmp_path)
    assert not LanguageCentering.load(tmp_path).active


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    _, _, vectors, languages = _bilingual(rng)
    centering = LanguageCentering.fit(vectors, languages)
    centering.save(tmp_path)
    loaded = LanguageCentering.load(tmp_path)
    assert loaded.active and loaded.default == "en"
    np.testing.assert_allclose(loaded.items(vectors, languages), centering.items(vectors, languages))
