"""Pick the few sentences that carry the answer, and decide whether there is any.

A 1.5B model on two cores reads ~65 prompt tokens per second, so the prompt
holds only the best sentences of the retrieved passages, not the passages.
Sentences are scored by the dense model (question vs. title + sentence) plus the
share of question terms they contain.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .clean import jieba, to_search_form
from .config import Config
from .entities import QUESTION_WORDS as _QUESTION_WORDS, absent_entities, english_names, is_pinyin, pinyin_of
from .embed import Embedder
from .stores import Store
from .injection import is_instruction
from .types import Passage

_QUANTITY = re.compile(r"多少|几|how (many|much)|what (percentage|share|proportion)|比例|面积|数量", re.I)
# Questions whose answer is a number or a year: an answer without one does not answer them.
_NUMBER_ASKED = re.compile(r"多少|几|哪一?年|何年|多久|百分之|how (many|much|long|old)|(what|which) year|what percentage", re.I)


@dataclass
class Evidence:
    passage: int  # index into the retrieved passages
    text: str
    start: int  # offsets into the passage text (for highlighting)
    end: int
    score: float


def question_terms(question: str) -> list[str]:
    terms = [t for t in jieba().cut_for_search(to_search_form(question)) if t.strip() and any(c.isalnum() for c in t)]
    return [t for t in dict.fromkeys(terms) if t not in _QUESTION_WORDS]


def select(question: str, passages: list[Passage], index: Store, embedder: Embedder, config: Config) -> list[Evidence]:
    """The best sentences, in reading order of their passages, within the character budget.

    Sentence vectors were computed at index time, so this costs one query embedding.
    """
    query = embedder.encode_queries([to_search_form(question)])[0]
    terms = question_terms(question)
    names = [w.lower() for w in english_names(question) if is_pinyin(w)]
    wants_number = bool(_QUANTITY.search(to_search_form(question)))  # 幾 is searched as 几
    candidates: list[Evidence] = []
    chunks = index.chunks(p.chunk_id for p in passages)
    for number, p in enumerate(passages):
        chunk = chunks[p.chunk_id]
        dense = index.sentence_vectors_of(p.chunk_id) @ query
        for (a, b), cosine in zip(chunk.sentences, dense):
            sentence = p.text[a:b].strip()
            if len(sentence) < 4 or is_instruction(sentence):
                continue  # an instruction inside an article is never evidence
            context = to_search_form(f"{p.title}：{sentence}")
            if names:  # English question: its Chinese place names are matched in pinyin
                spelled = pinyin_of(context)
                lexical = sum(n in spelled for n in names) / len(names)
            else:
                lexical = term_share(terms, context)
            bonus = config.evidence_number_bonus if wants_number and re.search(r"\d", sentence) else 0.0
            score = float(cosine) + config.evidence_lexical_weight * lexical + bonus
            text = compact(sentence, terms + names, wants_number, config.evidence_clause_chars)
            candidates.append(Evidence(number, text, a, b, score))
    wanted = config.evidence_sentences + (1 if names or not re.search(r"[\u4e00-\u9fff]", question) else 0)
    chosen, used = [], 0
    for evidence in sorted(candidates, key=lambda e: -e.score):
        if len(chosen) == wanted:
            break
        if chosen and used + len(evidence.text) > config.evidence_chars:
            continue  # too long for what is left of the budget; a shorter one may fit
        chosen.append(evidence)
        used += len(evidence.text)
    return sorted(chosen, key=lambda e: (e.passage, e.start))


def asks_for_number(question: str) -> bool:
    """多少, 几, 哪一年, how many…: the answer must hold a number (digits or Chinese numerals)."""
    return bool(_NUMBER_ASKED.search(to_search_form(question)))


def term_share(terms: list[str], context: str) -> float:
    """How much of the question (its terms, weighted by length) a sentence in search form mentions."""
    return sum(len(t) for t in terms if t in context) / max(1, sum(len(t) for t in terms))


def compact(sentence: str, terms: list[str], wants_number: bool, limit: int) -> str:
    """Shorten a long sentence to its clauses that mention the question's terms (or numbers)."""
    if len(sentence) <= limit:
        return sentence
    clauses = re.findall(r"[^，,；;：:]+[，,；;：:]?", sentence)
    form = [to_search_form(c) for c in clauses]
    spelled = [pinyin_of(c) for c in clauses] if any(t.isascii() for t in terms) else form

    def relevance(i: int) -> float:
        hits = sum(len(t) for t in terms if t in (spelled[i] if t.isascii() else form[i]))
        return hits + (2 if wants_number and re.search(r"\d", clauses[i]) else 0)

    keep: set[int] = set()
    used = 0
    for i in sorted(range(len(clauses)), key=lambda i: -relevance(i)):
        if relevance(i) == 0 or used + len(clauses[i]) > limit:
            continue
        keep.add(i)
        used += len(clauses[i])
    if not keep:
        return sentence[:limit] + "…"
    parts, previous = [], -1
    for i in sorted(keep):
        if i != previous + 1:
            parts.append("…")
        parts.append(clauses[i])
        previous = i
    return "".join(parts).rstrip("，,；;：:") + ("" if max(keep) == len(clauses) - 1 else "…")


def missing_entities(question: str, passages: list[Passage]) -> list[str]:
    """Named things in the question that no retrieved passage mentions: the answer cannot be there."""
    return absent_entities(question, "\n".join(f"{p.title}\n{p.text}" for p in passages))


def best_score(evidence: list[Evidence]) -> float:
    return max((e.score for e in evidence), default=float("-inf"))
