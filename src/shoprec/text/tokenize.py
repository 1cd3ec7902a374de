"""CJK-aware tokenizer shared by the lexical index, spelling, synonyms and suggestions.

`tokenize(text)` -> lowercase tokens after Unicode NFKC: English words, numbers (decimals such as
"5.3" stay whole) and mixed alphanumerics ("mp3", "usb3") from Latin/other scripts; Chinese runs
are segmented with jieba in search mode (the fine words first, then any longer dictionary word),
so "无线蓝牙耳机" and "无线耳机 蓝牙5.3" share the tokens 无线 / 蓝牙 / 耳机. Japanese kana and Korean
hangul runs are kept as one token each (jieba has no dictionary for them).

jieba is imported and initialised on first use only, quietly, with its dictionary cache in the
system temp dir, so importing this module costs nothing.
"""

from __future__ import annotations

import re
import tempfile
import threading
import unicodedata
from pathlib import Path
from typing import Any

# CJK unified ideographs (+ extension A, compatibility ideographs). Kana/hangul are separate.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA_HANGUL = "\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af"
_CJK_RE = re.compile(f"[{_HAN}{_KANA_HANGUL}]")
# Numbers keep their decimal point ("5.3", "1,200"); words are letter/digit runs of any script
# except Han (handled by jieba). Apostrophes inside words are dropped ("men's" -> "mens").
_TOKEN_RE = re.compile(
    rf"(?P<han>[{_HAN}]+)"
    rf"|(?P<num>\d+(?:[.,]\d+)+)"
    rf"|(?P<word>(?:[^\W_{_HAN}]|['’](?=[^\W_{_HAN}]))+)"
)

ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    """a an and are as at be but by for from has have if in into is it its of on or s such t that the
    their then there these they this to was were will with""".split()
)

_jieba: Any = None
_jieba_lock = threading.Lock()


def _segmenter() -> Any:
    """The jieba tokenizer, initialised once (quietly; dictionary cache in the temp dir)."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import logging

                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                cache_dir = Path(tempfile.gettempdir()) / "shoprec-jieba"
                cache_dir.mkdir(parents=True, exist_ok=True)
                tokenizer.tmp_dir = str(cache_dir)
                tokenizer.initialize()
                _jieba = tokenizer
    return _jieba


def is_cjk(text: str) -> bool:
    """True when `text` contains any Chinese, Japanese kana or Korean hangul character."""
    return bool(_CJK_RE.search(text or ""))


def normalize(text: str) -> str:
    """NFKC + casefold: full-width forms become ASCII, "Ⅱ" -> "ii", "ß" -> "ss"."""
    return unicodedata.normalize("NFKC", text or "").casefold()


def tokenize(text: str) -> list[str]:
    """Lowercase tokens of `text` (NFKC): words, numbers, and jieba-segmented Chinese.

    Stopwords are kept (callers drop `ENGLISH_STOPWORDS` where they want to).
    """
    text = normalize(text)
    if not text:
        return []
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        piece = match.group()
        if kind == "han":
            tokens.extend(t for t in _segmenter().cut_for_search(piece, HMM=True) if t.strip())
        elif kind == "word":
            tokens.append(piece.replace("'", "").replace("’", ""))
        else:
            tokens.append(piece)
    return tokens


def token_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, token) for each non-Han word/number of `text` as written (case kept in
    `text`, token lowercased); Han runs are returned whole. Used to rewrite queries in place."""
    spans = []
    for match in _TOKEN_RE.finditer(text or ""):
        spans.append((match.start(), match.end(), normalize(match.group())))
    return spans
