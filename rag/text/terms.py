"""Terms of a text: jieba's search-mode words (BM25) and Han character pairs (overlap of wording)."""
from __future__ import annotations

import re
import sys

from .lexicon import QUESTION_WORDS
from .script import HAN_CHARS, jieba, to_search_form


def tokenize(text: str) -> list[str]:
    """BM25 terms: jieba's search-mode words of the simplified text, punctuation dropped. Interned:
    a large build holds every chunk's terms, and one copy of each word instead of one per use
    saves about half a gigabyte per 30k chunks."""
    return [sys.intern(t) for t in jieba().cut_for_search(text) if t.strip() and any(c.isalnum() for c in t)]


def question_terms(question: str) -> list[str]:
    """What a question asks about: its BM25 terms, once each, without the words that only ask (多少, 哪个)."""
    return [t for t in dict.fromkeys(tokenize(to_search_form(question))) if t not in QUESTION_WORDS]


def han_bigrams(text: str) -> set[str]:
    han = re.sub(f"[^{HAN_CHARS}]+", " ", text)
    return {a + b for word in han.split() for a, b in zip(word, word[1:])}
