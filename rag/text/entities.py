"""Named things (places, organisations, people) and whether the articles mention them.

Chinese names come from jieba's part-of-speech tags. An English question names
Chinese places in pinyin ("Jinan", "Shanghai"), so a capitalised word that spells
pinyin syllables is looked up in the pinyin of the passages.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .lexicon import ASKING, COUNTERS, GLUED, NAMED_TAGS, QUESTION_WORDS
from .script import has_han, jieba, to_search_form

_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")


def chinese_entities(text: str) -> list[str]:
    """Places, organisations and people the text names. A noun right after a question word
    (哪一个**都市**, 哪个**城市**) is the kind of thing asked for, not a name the answer must carry."""
    import jieba.posseg as posseg

    jieba()
    words = list(posseg.cut(to_search_form(text)))
    names = [_without_glue(w.word) for i, w in enumerate(words)
             if w.flag.startswith(NAMED_TAGS) and len(w.word) >= 2 and w.word not in QUESTION_WORDS and not _asked_for(words, i)]
    return list(dict.fromkeys(names))


def _without_glue(name: str) -> str:
    """jieba tags some names together with the conjunction or preposition before them
    (新竹县**和宜兰**厅, 445年**于北魏**): the name is what follows it. The shorter form is inside
    the longer, so it can only be found more often."""
    return name[1:] if name[0] in GLUED and len(name) >= 3 else name


def _asked_for(words: list, i: int) -> bool:
    """The word follows a question word, directly or through a counter: 哪个城市, 哪一个都市."""
    before = [w.word for w in words[max(0, i - 2) : i]]
    if before and before[-1] in ASKING:
        return True
    return len(before) == 2 and before[0] in ASKING and before[1] in COUNTERS


def english_names(text: str) -> list[str]:
    """Capitalised words that are not sentence-initial, e.g. 'Jinan', 'Paris'."""
    return list(dict.fromkeys(_CAPITALISED.findall(text)))


@lru_cache(maxsize=1)
def _syllables() -> frozenset[str]:
    from pypinyin.pinyin_dict import pinyin_dict

    out = set()
    for readings in pinyin_dict.values():
        for reading in readings.split(","):
            plain = "".join(c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c))
            out.add(plain.replace("ü", "v").lower())
    return frozenset(out)


def is_pinyin(word: str) -> bool:
    """True if the word splits into Mandarin syllables ('Qinghai' -> qing+hai)."""
    word = word.lower()
    syllables = _syllables()
    ok = [True] + [False] * len(word)
    for end in range(1, len(word) + 1):
        ok[end] = any(ok[start] and word[start:end] in syllables for start in range(max(0, end - 6), end))
    return ok[-1] and len(word) >= 4


def pinyin_of(text: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return "".join(lazy_pinyin(to_search_form(text), style=Style.NORMAL, errors="ignore")).replace("ü", "v")


def absent_entities(question: str, corpus_text: str) -> list[str]:
    """Names in the question that the given text never mentions."""
    if has_han(question):
        form = to_search_form(corpus_text)
        return [e for e in chinese_entities(question) if not mentions(form, e)]
    spelled = pinyin_of(corpus_text)
    return [w for w in english_names(question) if is_pinyin(w) and w.lower() not in spelled]


def mentions(form: str, name: str) -> bool:
    """Whether a text in search form names the thing, also without one character at either end of
    the name: the tagger glues a dynasty, title or suffix to a name (明崇祯, 亚太区) that the article
    writes bare (崇祯, 亚太)."""
    return name in form or (len(name) >= 3 and (name[1:] in form or name[:-1] in form))


def unsupported_names(answer: str, question: str, corpus_text: str) -> list[str]:
    """Names the answer introduces (not from the question) that the passages never mention: a Chinese
    name by its characters; a Latin-letter one as written, or, if it is pinyin, as the passages read."""
    if has_han(answer):
        form = to_search_form(corpus_text)
        asked = to_search_form(question)
        return [e for e in chinese_entities(answer) if e not in form and e not in asked]
    spelled = pinyin_of(corpus_text)
    asked, written = question.lower(), corpus_text.lower()
    return [w for w in english_names(answer) if w.lower() not in asked and not _written_in(w.lower(), written)
            and (not is_pinyin(w) or w.lower() not in spelled)]


def _written_in(word: str, text: str) -> bool:
    """Whether a Latin-letter word is in the text as a word (Fuller in "Fay Fuller协同", not Li in "Lithium")."""
    return re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", text) is not None
