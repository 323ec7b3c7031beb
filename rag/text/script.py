"""Scripts and forms of Chinese text: simplified and traditional (OpenCC), the search form both
queries and passages are matched in, the language a question is written in, and jieba."""
from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

HAN_CHARS = "\u3400-\u9fff"  # Chinese characters (CJK unified ideographs and extension A), for character classes
HAN = re.compile(f"[{HAN_CHARS}]")


def has_han(text: str) -> bool:
    """Whether the text holds a Chinese character (a Chinese question, not an English one)."""
    return HAN.search(text) is not None


@lru_cache(maxsize=1)
def jieba():
    """jieba, initialised once and quiet (it logs its dictionary loading at DEBUG)."""
    import jieba as _jieba

    _jieba.setLogLevel(logging.WARNING)
    _jieba.initialize()
    return _jieba


@lru_cache(maxsize=None)
def _opencc(conversion: str):
    from opencc import OpenCC

    return OpenCC(conversion)


def in_script(text: str, lang: str) -> str:
    """Write generated text in the question's script (traditional, simplified or as is)."""
    if lang == "zh-Hant":
        return _opencc("s2tw").convert(text)
    if lang == "zh-Hans":
        return _opencc("t2s").convert(text)
    return text


def to_search_form(text: str) -> str:
    """The form both queries and passages are matched in: simplified, NFKC, lowercase."""
    return unicodedata.normalize("NFKC", _opencc("t2s").convert(text)).lower()


def normalised(text: str) -> tuple[str, list[int]]:
    """Search form without punctuation or spaces, and for each kept character its index in `text`.

    Two renderings of the same words (scripts, widths, punctuation) compare equal in this form.
    """
    kept, where = [], []
    for i, char in enumerate(text):
        form = to_search_form(char)
        if form.isalnum():
            kept.append(form)
            where.append(i)
    return "".join(kept), where


def language_of(question: str) -> str:
    han = HAN.findall(question)
    if not han:
        return "en"
    simplified = in_script("".join(han), "zh-Hans")
    return "zh-Hant" if sum(a != b for a, b in zip(han, simplified)) >= 1 else "zh-Hans"
