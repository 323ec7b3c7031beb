"""Split a multi-part question into its parts: 济南和淄博分别建有多少家驿站？ asks two things.

Every part gets its own evidence and its own checked answer, so one part is never
filled with a number that belongs to the other (or to nothing). Only coordinated
noun phrases with a distributive word (分别, 各, 各自) are split: "A和B一共有多少"
asks one thing.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

from ..text.lexicon import CONJUNCTIONS, DISTRIBUTIVE
from ..text.markers import renumber
from ..text.script import has_han, in_script, jieba
from ..types import Answer, Refusal, Trace

_NOMINAL = ("n", "j", "eng", "m")  # jieba tags of nouns, names, abbreviations, latin words, numerals


class Part(NamedTuple):
    subject: str  # 济南
    question: str  # 济南建有多少家驿站？


def split_question(question: str) -> list[Part]:
    """The parts of a question that asks the same thing of several subjects, else the question whole."""
    whole = [Part("", question)]
    if not has_han(question) or not any(cue in question for cue in DISTRIBUTIVE):
        return whole
    import jieba.posseg as posseg

    jieba()
    words = [(w.word, w.flag) for w in posseg.cut(question)]
    cue = next((i for i, (word, _) in enumerate(words) if word in DISTRIBUTIVE), None)
    if cue is None:
        return whole
    items: list[list[str]] = [[]]
    start = cue
    for i in range(cue - 1, -1, -1):
        word, flag = words[i]
        if word in CONJUNCTIONS:
            if not items[0]:
                break
            items.insert(0, [])
        elif flag.startswith(_NOMINAL):
            items[0].insert(0, word)
        else:
            break
        start = i
    items = [item for item in items if item]
    if len(items) < 2:
        return whole
    if words[start][0] in CONJUNCTIONS:
        start += 1
    prefix = "".join(word for word, _ in words[:start])
    suffix = "".join(word for word, _ in words[cue + 1 :])
    return [Part("".join(item), f"{prefix}{''.join(item)}{suffix}") for item in items]


def combine(parts: list[Part], answers: list[Answer], lang: str, seconds: float) -> Answer:
    """One answer, a line per part ("济南：…[1]" / "淄博：文章中没有找到相关信息。"), citations renumbered."""
    citations, lines, unverified = [], [], []
    for part, answer in zip(parts, answers):
        if answer.refused:
            lines.append(f"{part.subject}：{answer.text}")
            continue
        numbers = {}
        for n, passage in enumerate(answer.citations, 1):
            key = (passage.source, passage.chunk_id)
            at = next((i for i, c in enumerate(citations) if (c.source, c.chunk_id) == key), None)
            if at is None:
                citations.append(passage)
                at = len(citations) - 1
            numbers[n] = at + 1
        lines.append(f"{part.subject}：" + renumber(answer.text, numbers))
        unverified += answer.unverified
    traces = [a.trace for a in answers]
    if all(a.refused for a in answers):
        trace = Trace(lang, ttft=traces[0].ttft or seconds, seconds=seconds, parts=traces,
                      refusal=Refusal("parts", "; ".join(t.refusal.detail for t in traces if t.refusal)))
        return Answer.refusing(trace)
    trace = dataclasses.replace(traces[0], seconds=seconds, parts=traces)
    return Answer(in_script("\n".join(lines), lang), citations, refused=False, unverified=unverified, trace=trace)
