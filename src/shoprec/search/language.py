"""Per-language centring of multilingual embeddings, so a query meets products in other languages.

A multilingual encoder places texts of one language close together whatever they mean (with
multilingual-e5-small, 无线耳机 is about as close to a Chinese dog-food title as to "Wireless
Earbuds"). Subtracting each language's mean embedding removes that shared direction (Libovický et
al., 2020, "On the language neutrality of pre-trained multilingual representations"), leaving
meaning. It is only switched on for catalogs that really mix languages; for a one-language catalog
it is the identity.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def text_language(text: str, default: str = "en") -> str:
    """"zh" when the text holds Chinese characters, else `default`."""
    return "zh" if _CJK.search(text or "") else default


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class LanguageCentering:
    """Language -> mean item embedding; `items()` and `query()` subtract it and re-normalise."""

    FILE = "language_means.npz"

    def __init__(self, means: dict[str, np.ndarray] | None = None, default: str = "en"):
        self.means = {k: np.asarray(v, np.float32) for k, v in (means or {}).items()}
        self.default = default

    @property
    def active(self) -> bool:
        return len(self.means) >= 2

    @classmethod
    def fit(cls, vectors: np.ndarray, languages: Sequence[str], min_share: float = 0.05) -> "LanguageCentering":
        """Means of the languages holding at least `min_share` of the items; inactive below two."""
        langs = np.asarray(languages, dtype=object)
        names, counts = np.unique(langs, return_counts=True) if len(langs) else ([], [])
        kept = [str(n) for n, c in zip(names, counts) if c >= min_share * len(langs)]
        if len(kept) < 2:
            return cls()
        means = {name: vectors[langs == name].mean(axis=0) for name in kept}
        latin = [n for n in sorted(kept, key=lambda n: -int(counts[list(names).index(n)])) if n != "zh"]
        return cls(means, default=latin[0] if latin else "en")

    def item_languages(self, languages: Sequence[str | None], texts: Sequence[str]) -> list[str]:
        """Each product's language: its own field when known here, else detected from its text."""
        return [lang if lang in self.means else text_language(text, self.default)
                for lang, text in zip(languages, texts)]

    def items(self, vectors: np.ndarray, languages: Sequence[str]) -> np.ndarray:
        """(n, d) item vectors with their language's mean removed; unchanged when inactive."""
        if not self.active or not len(vectors):
            return vectors
        offsets = np.stack([self.means.get(lang, np.zeros(vectors.shape[1], np.float32)) for lang in languages])
        return _normalize(vectors - offsets)

    def query(self, vector: np.ndarray, text: str) -> np.ndarray:
        """(d,) query vector with the mean of the query's (detected) language removed."""
        if not self.active:
            return vector
        mean = self.means.get(text_language(text, self.default))
        return vector if mean is None else _normalize(vector - mean)

    def save(self, path: Path) -> None:
        if self.active:
            np.savez(path / self.FILE, **self.means, __default__=np.array(self.default))

    @classmethod
    def load(cls, path: Path) -> "LanguageCentering":
        file = path / cls.FILE
        if not file.exists():
            return cls()
        data = dict(np.load(file))
        default = str(data.pop("__default__", "en"))
        return cls(data, default)
