"""Make every citation marker true: the cited passage must contain the sentence's facts.

Small models drop markers, cite the wrong passage or invent numbers. Per answer
sentence we collect its facts (numbers), keep a cited passage only if it holds
them, otherwise move the marker to a passage that does; sentences without a
marker get one. Numbers found in no retrieved passage are flagged, never shown
silently. Markers are finally renumbered 1..n in order of first use.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..clean import blank_pinyin
from ..text.entities import unsupported_names
from ..text.injection import without_instructions
from ..text.markers import MARKER, strip_markers
from ..text.numbers import contains_number, number_form, numbers
from ..text.script import normalised, to_search_form
from ..text.terms import han_bigrams
from ..types import Passage

# An answer's sentences end only at 。！？ (not at ； as an article's do, text.sentences): a marker goes
# before the full stop of the sentence it supports, and clauses joined by ； share it.
_SENTENCE = re.compile(r"[^。！？!?\n]+(?:[。！？!?]+|$)")
_UNVERIFIED_NOTE = {
    "zh-Hans": "（注意：{}未见于引用的文章）",
    "zh-Hant": "（注意：{}未見於引用的文章）",
    "en": " (note: {} does not appear in the cited articles)",
}


@dataclass
class Cited:
    text: str
    citations: list[Passage]
    unverified: list[str]  # numbers and names found in no retrieved passage
    unsupported: bool  # the answer states facts and none of them is in any passage


def verify(answer: str, passages: list[Passage], question: str, lang: str, quoted: int | None = None) -> Cited:
    """Citations that hold what each sentence says; `quoted` is the passage the reader found the
    answer's quote in, which replaces the model's own markers (they still have to hold the facts)."""
    texts = [without_instructions(p.text) for p in passages]  # an instruction in an article supports nothing
    forms = [number_form(t) for t in texts]
    asked = set(numbers(question))
    asked_form = to_search_form(question)
    used: list[int] = []  # passage indices in order of first citation
    unverified: list[str] = []
    verified = 0
    out: list[str] = []
    # "…基地。[1]" -> "…基地[1]。" so a marker stays with the sentence it follows
    answer = re.sub(rf"([。！？!?])((?:{MARKER.pattern})+)", r"\2\1", answer)
    if quoted is not None:
        answer = strip_markers(answer)
    for sentence in _SENTENCE.findall(answer):
        cited = [int(n) - 1 for group in MARKER.findall(sentence) for n in re.split(r"[,，、]", group)]
        cited = cited or ([quoted] if quoted is not None else [])
        body = strip_markers(sentence)
        facts = [n for n in numbers(body) if n not in asked]
        known = [f for f in facts if any(contains_number(form, f) for form in forms)]
        unverified += [f for f in facts if f not in known]
        verified += len(known)
        holders = [i for i, form in enumerate(forms) if known and all(contains_number(form, f) for f in known)] or list(
            dict.fromkeys(next(i for i, form in enumerate(forms) if contains_number(form, f)) for f in known)
        )
        valid = [i for i in cited if 0 <= i < len(passages) and (not known or i in holders)]
        if not known:
            valid = _best_supported(valid, body, asked_form, forms)
        if not valid:
            valid = holders[:1] or ([] if facts else _closest(body, passages))
        for i in valid:
            if i not in used:
                used.append(i)
        stripped = body.rstrip()
        end = len(stripped.rstrip("。！？!?")) if stripped else 0
        markers = "".join(f"[{used.index(i) + 1}]" for i in dict.fromkeys(valid))
        out.append(stripped[:end] + markers + stripped[end:])
    text = "".join(out).strip()
    names = unsupported_names(strip_markers(answer), question, "\n".join(f"{p.title}\n{t}" for p, t in zip(passages, texts)))
    unverified = list(dict.fromkeys(unverified + names))
    if unverified:
        text += _UNVERIFIED_NOTE[lang].format("、".join(unverified) if lang != "en" else ", ".join(unverified))
    return Cited(text, [passages[i] for i in used], unverified, unsupported=bool(unverified) and not verified)


def _best_supported(cited: list[int], body: str, question: str, forms: list[str]) -> list[int]:
    """Names and words the sentence adds to the question must be in the passage it cites.

    Without numbers to check, a marker pointing at a passage that holds fewer of
    the sentence's new character bigrams than another passage is moved there.
    """
    new = han_bigrams(to_search_form(body)) - han_bigrams(question)
    if not cited or not new:
        return cited
    support = [len(new & han_bigrams(form)) for form in forms]
    best = max(support)
    if best == 0 or any(support[i] == best for i in cited):
        return [i for i in cited if support[i] == best]
    return [support.index(best)]


def _closest(sentence: str, passages: list[Passage]) -> list[int]:
    """A sentence without numbers or marker: attribute it to the passage sharing most of its characters."""
    chars = set(to_search_form(sentence)) - set(" ，,。的了是在和")
    if len(chars) < 4:
        return []
    overlaps = [len(chars & set(to_search_form(p.text))) / len(chars) for p in passages]
    best = max(range(len(passages)), key=lambda i: overlaps[i], default=None)
    return [best] if best is not None and overlaps[best] >= 0.5 else []


def file_span(raw: str, passage: Passage, start: int, end: int) -> tuple[int, int]:
    """File offsets of `passage.text[start:end]`: cleaning only deleted characters (page breaks,
    glued pinyin), so the span is found in the passage's stretch of the file, exactly or with those gaps."""
    quote = passage.text[start:end]
    window = raw[passage.start : passage.end]
    at = window.find(quote)
    if at >= 0:
        return passage.start + at, passage.start + at + len(quote)
    form, where = normalised(blank_pinyin(window))
    target, _ = normalised(quote)
    at = form.find(target) if target else -1
    if at < 0:
        raise ValueError("the quote is not in the file's text for this passage")
    return passage.start + where[at], passage.start + where[at + len(target) - 1] + 1
