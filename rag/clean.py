"""Repair what the newspaper converter broke in the seed text (decoding is `loaders.decode`).

Every repair only deletes characters, so each cleaned paragraph carries the
file offset of every character it kept and citations stay exact.
"""
from __future__ import annotations

import re

from .text.script import HAN_CHARS, jieba
from .types import Paragraph


# Pinyin a converter glued after a character: 團結(jié) -> 團結. At least one tone mark,
# so that real parentheses such as (记者李丹青) or (de) survive.
_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_PINYIN = re.compile(rf"(?<=[{HAN_CHARS}])[(（](?=[a-zü{_TONED}]*[{_TONED}])[a-zü{_TONED}]{{1,7}}[)）]")

# A paragraph ending in one of these is complete; anything else may be cut by a page break.
_CLOSERS = set("。！？!?…；;：:”’\"'」』）)】》—.")
_SENTENCE_PUNCT = re.compile(r"[，,。；;！!？?]")
_BYLINE = re.compile(r"^(本报讯|本報訊|本报记者|本報記者|本报通讯员|本報通訊員|——|—|【)")



def clean(text: str) -> list[Paragraph]:
    """Split into paragraphs, strip glued pinyin, re-join page breaks, drop repeats."""
    paragraphs = [p for p in (_strip_pinyin(p) for p in _lines(text)) if p.text]
    # again after joining: a PDF column can end inside glued pinyin, 企業(y | è)
    return _drop_repeats([_strip_pinyin(p) for p in _join_page_breaks(paragraphs)])


def _lines(text: str) -> list[Paragraph]:
    out = []
    for match in re.finditer(r"[^\n]+", text):
        line = match.group()
        left = len(line) - len(line.lstrip())
        stripped = line.strip()
        if stripped:
            start = match.start() + left
            out.append(Paragraph(stripped, tuple(range(start, start + len(stripped)))))
    return out


def _strip_pinyin(p: Paragraph) -> Paragraph:
    spans = [m.span() for m in _PINYIN.finditer(p.text)]
    return _delete(p, spans) if spans else p


def _delete(p: Paragraph, spans: list[tuple[int, int]]) -> Paragraph:
    keep = [True] * len(p.text)
    for a, b in spans:
        keep[a:b] = [False] * (b - a)
    return Paragraph(
        "".join(c for c, k in zip(p.text, keep) if k),
        tuple(o for o, k in zip(p.offsets, keep) if k),
    )


def remove_pinyin(text: str) -> str:
    return _PINYIN.sub("", text)


def blank_pinyin(text: str) -> str:
    """Glued pinyin replaced by spaces of the same length, so offsets into `text` still hold."""
    return _PINYIN.sub(lambda m: " " * len(m.group()), text)


def _join_page_breaks(paragraphs: list[Paragraph]) -> list[Paragraph]:
    out: list[Paragraph] = []
    for p in paragraphs:
        if out and is_page_break(out[-1].text, p.text):
            prev = out.pop()
            p = Paragraph(prev.text + p.text, prev.offsets + p.offsets)
        out.append(p)
    return out


def is_page_break(before: str, after: str) -> bool:
    """True when `after` continues the sentence that a page break cut in `before`."""
    if before[-1] in _CLOSERS or _BYLINE.match(after):
        return False
    if not re.search(r"[。！？!?；;]", after):
        return False  # `after` is a headline or caption, not running text
    if before[-1] in "、，,“" or (len(before) > 20 and _SENTENCE_PUNCT.search(before)):
        return True  # `before` is running text cut mid-sentence
    return _word_crosses(before, after)


def _word_crosses(before: str, after: str) -> bool:
    """A short unpunctuated line continues only if a dictionary word spans the break."""
    head, tail = before[-4:], after[:4]
    pos = 0
    for token in jieba().cut(head + tail, HMM=False):
        if pos < len(head) < pos + len(token):
            return True
        pos += len(token)
    return False


def _drop_repeats(paragraphs: list[Paragraph]) -> list[Paragraph]:
    seen: set[str] = set()
    out = []
    for p in paragraphs:
        key = re.sub(r"\s+", "", p.text)
        if len(key) >= 8 and key in seen:
            continue
        seen.add(key)
        out.append(p)
    return out


