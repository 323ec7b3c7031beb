"""Decode seed files and repair what the newspaper converter broke.

Every repair only deletes characters, so each cleaned paragraph carries the
file offset of every character it kept and citations stay exact.
"""
from __future__ import annotations

import codecs
import logging
import unicodedata
from functools import lru_cache
import re
from pathlib import Path

from .types import Paragraph

log = logging.getLogger(__name__)


class UnreadableFileError(ValueError):
    """A seed file is neither UTF-8 nor a Chinese legacy encoding we can detect."""


class SkippedFileError(ValueError):
    """A seed file holds no text (empty or binary); it is skipped, not fatal."""


# Pinyin a converter glued after a character: 團結(jié) -> 團結. At least one tone mark,
# so that real parentheses such as (记者李丹青) or (de) survive.
_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_PINYIN = re.compile(rf"(?<=[\u3400-\u9fff])[(（](?=[a-zü{_TONED}]*[{_TONED}])[a-zü{_TONED}]{{1,7}}[)）]")

# A paragraph ending in one of these is complete; anything else may be cut by a page break.
_CLOSERS = set("。！？!?…；;：:”’\"'」』）)】》—.")
_SENTENCE_PUNCT = re.compile(r"[，,。；;！!？?]")
_BYLINE = re.compile(r"^(本报讯|本報訊|本报记者|本報記者|本报通讯员|本報通訊員|——|—|【)")
_ENCODINGS = ("gb18030", "big5")


# Byte-order marks, longest first: UTF-32-LE's mark begins with UTF-16-LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_PLAUSIBLE = 0.6  # share of common characters a legacy decoding needs
_MARGIN = 0.15  # ... and its lead over the other legacy encoding


def decode(path: Path) -> str:
    """Read a seed file as text: a BOM's encoding, UTF-8, or whichever of GB18030/Big5 reads as Chinese."""
    data = path.read_bytes()
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise UnreadableFileError(f"{path.name}: starts with a {encoding} byte-order mark but is not {encoding} ({exc.reason})") from exc
            if not text.strip():
                raise SkippedFileError(f"{path.name}: empty file, skipped")
            return text
    if not data.strip():
        raise SkippedFileError(f"{path.name}: empty file, skipped")
    if b"\x00" in data[:4096]:
        raise SkippedFileError(f"{path.name}: binary file (NUL bytes), skipped")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    encoding, text, doubt = _best_legacy_decoding(data)
    if doubt:
        raise UnreadableFileError(
            f"{path.name}: not UTF-8, and {doubt}; convert it with "
            f"`iconv -f <encoding> -t UTF-8 {path.name}` and index again"
        )
    log.warning("%s: not UTF-8, decoded as %s", path.name, encoding)
    return text


def _best_legacy_decoding(data: bytes) -> tuple[str, str, str]:
    """(encoding, text, doubt): GB18030 and Big5 both accept most byte pairs, so each
    reading is scored by how common its characters are once converted to simplified
    Chinese (a right Big5 reading is traditional text). A reading that is not clearly
    Chinese, or not clearly better than the other, is doubtful and not used."""
    candidates = []
    for encoding in _ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        candidates.append((_common_ratio(text), encoding, text))
    if not candidates:
        return "", "", "neither GB18030 nor Big5 decodes it"
    candidates.sort(reverse=True)
    ratio, encoding, text = candidates[0]
    if ratio < _PLAUSIBLE:
        return encoding, text, f"as {encoding} only {ratio:.0%} of its characters are common Chinese (garbled?)"
    if len(candidates) > 1 and ratio - candidates[1][0] < _MARGIN:
        return encoding, text, f"it reads about as well as {encoding} ({ratio:.0%}) as {candidates[1][1]} ({candidates[1][0]:.0%})"
    return encoding, text, ""


def _common_ratio(text: str) -> float:
    """Share of CJK characters (in simplified form) that jieba's dictionary knows as common single-character words."""
    han = [c for c in _opencc("t2s").convert(text) if "\u4e00" <= c <= "\u9fff"]
    if not han:
        return 1.0 if text.isprintable() or "\n" in text else 0.0
    freq = jieba().dt.FREQ
    return sum(1 for c in han if freq.get(c, 0) > 100) / len(han)


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
