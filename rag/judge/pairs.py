"""Question-sentence pairs built mechanically from a reading-comprehension set (SQuAD format).

One builder serves training and the near-miss bench, so the judge is trained on the same
kinds of near miss it is measured on:

- the *answer* sentence (holding the gold span) is a positive;
- *same paragraph*: its other sentences, hardest (most shared character pairs) first;
- *same article*: sentences of the article's other paragraphs, or, where an article is one
  paragraph (CMRC), of the paragraphs sharing most with the question;
- *changed constraint*: the question with a year, number, place, organisation or person
  replaced by another of the same kind the archive mentions elsewhere, paired with the
  answer sentence, which then no longer answers it (2022年 → 2021年, 济南 → 淄博).
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..text.lexicon import NAMED_TAGS
from ..text.script import jieba, to_search_form
from ..text.sentences import split_sentences

_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?=年)")
_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?![\d.])")


@dataclass
class Sentence:
    text: str
    before: str  # the sentence before it in its paragraph ("" for the first)
    title: str
    paragraph: int  # index of the paragraph in the set
    article: int
    context: str = ""  # the two sentences before it, as the judge reads a sentence when answering


@dataclass
class Question:
    id: str
    text: str
    answers: list[str]
    paragraph: int
    article: int
    gold: list[int]  # indexes into Corpus.sentences holding an answer span


@dataclass
class Corpus:
    """A set's sentences and questions, with the article each comes from."""

    name: str
    sentences: list[Sentence] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    by_paragraph: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_article: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))  # paragraphs


def read_set(path: Path) -> Corpus:
    corpus = Corpus(Path(path).stem)
    paragraph = 0
    for article, entry in enumerate(json.loads(Path(path).read_text(encoding="utf-8"))["data"]):
        title = entry.get("title", "")
        for para in entry["paragraphs"]:
            text = para["context"]
            spans = split_sentences(text)
            first = len(corpus.sentences)
            for i, (a, b) in enumerate(spans):
                before = [text[x:y].strip() for x, y in spans[max(0, i - 2):i]]
                corpus.sentences.append(Sentence(text[a:b].strip(), before[-1] if before else "", title, paragraph,
                                                 article, "".join(before)))
                corpus.by_paragraph[paragraph].append(first + i)
            corpus.by_article[article].append(paragraph)
            for qa in para["qas"]:
                if not qa["question"].strip():
                    continue
                gold = sorted({first + i for ans in qa["answers"] for i, (a, b) in enumerate(spans)
                               if a <= ans["answer_start"] < b})
                answers = sorted({a["text"].strip() for a in qa["answers"]} - {""})
                if gold and answers:
                    corpus.questions.append(Question(qa["id"], qa["question"].strip(), answers, paragraph, article, gold))
            paragraph += 1
    return corpus


def bigrams(text: str) -> set[str]:
    form = re.sub(r"\W", "", to_search_form(text))
    return {form[i:i + 2] for i in range(len(form) - 1)}


class Neighbours:
    """The sentences sharing most character pairs with a text: how near misses are found cheaply."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus
        self.postings: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(corpus.sentences):
            for g in bigrams(f"{s.title}{s.text}"):
                self.postings[g].append(i)

    def ranked(self, text: str, skip=lambda i: False, limit: int = 50) -> list[int]:
        counts: Counter[int] = Counter()
        for g in sorted(bigrams(text)):  # sorted: ties rank the same in every process
            posting = self.postings.get(g, ())
            if len(posting) < 2000:  # a pair in everything says nothing
                counts.update(posting)
        return [i for i, _ in counts.most_common(limit * 4) if not skip(i)][:limit]


def negatives(corpus: Corpus, neighbours: Neighbours, q: Question, rng: random.Random,
              same_paragraph: int = 3, same_article: int = 2, after_answer: bool = True) -> list[tuple[int, str]]:
    """(sentence, kind) near misses for a question: sentences that do not hold its answer."""
    shared = bigrams(q.text)
    own = [i for i in corpus.by_paragraph[q.paragraph] if i not in q.gold and not holds(corpus.sentences[i].text, q.answers)]
    own.sort(key=lambda i: -len(shared & bigrams(corpus.sentences[i].text)))
    picked = own[: same_paragraph - 1] + rng.sample(own[same_paragraph - 1:], min(1, len(own[same_paragraph - 1:])))
    out = [(i, "same_paragraph") for i in picked]
    after = q.gold[-1] + 1  # reads the answer in its context, but does not state it itself
    if after_answer and after in own and after not in picked:
        out.append((after, "after_answer"))
    article_paragraphs = set(corpus.by_article[q.article]) - {q.paragraph}
    if article_paragraphs:
        skip = lambda i: corpus.sentences[i].paragraph not in article_paragraphs  # noqa: E731
    else:
        skip = lambda i: corpus.sentences[i].paragraph == q.paragraph  # noqa: E731
    others = [i for i in neighbours.ranked(q.text, skip, limit=10) if not holds(corpus.sentences[i].text, q.answers)]
    out += [(i, "same_article") for i in others[:same_article]]
    return out


def holds(text: str, answers: list[str]) -> bool:
    form = to_search_form(text)
    return any(to_search_form(a) in form for a in answers)


def constraints(text: str) -> list[tuple[str, str]]:
    """(value, kind) of what a question pins down: years, other numbers, places, people, organisations."""
    import jieba.posseg as posseg

    form = to_search_form(text)
    found = [(m.group(1), "year") for m in _YEAR.finditer(form)]
    years = {v for v, _ in found}
    found += [(m.group(), "number") for m in _NUMBER.finditer(form) if m.group() not in years]
    jieba()
    found += [(w.word, w.flag[:2]) for w in posseg.cut(form) if w.flag.startswith(NAMED_TAGS) and len(w.word) >= 2]
    return list(dict.fromkeys(found))


class ConstraintPool:
    """Values of each kind that the archive mentions, per article and overall, to swap a question's for."""

    def __init__(self, texts: Corpus | list[tuple[int, str]]):
        """From a set's sentences, or from (article, text) pairs."""
        self.by_article: dict[tuple[int, str], set[str]] = defaultdict(set)
        self.overall: dict[str, set[str]] = defaultdict(set)
        pairs = [(s.article, s.text) for s in texts.sentences] if isinstance(texts, Corpus) else texts
        for article, text in pairs:
            for value, kind in constraints(text):
                self.by_article[(article, kind)].add(value)
                self.overall[kind].add(value)

    def other(self, value: str, kind: str, article: int, avoid: str, rng: random.Random) -> str | None:
        """Another value of the kind, from the same article when it has one (same-event news), that
        `avoid` (the answer's context) does not contain."""
        for pool in (self.by_article[(article, kind)], self.overall[kind]):
            choices = sorted(v for v in pool if v != value and v not in avoid and value not in v and v not in value)
            if kind == "year":
                choices = [v for v in choices if abs(int(v) - int(value)) <= 30] or choices
            if choices:
                return rng.choice(choices)
        return None


def changed_question(corpus: Corpus, pool: ConstraintPool, q: Question, rng: random.Random) -> str | None:
    """The question with one constraint the answer sentence states replaced, or None when none can be."""
    return next(iter(changed_questions(corpus, pool, q, rng, 1)), None)


def changed_questions(corpus: Corpus, pool: ConstraintPool, q: Question, rng: random.Random, most: int) -> list[str]:
    """Up to `most` changed questions, each with a different constraint replaced."""
    gold = corpus.sentences[q.gold[0]]
    return changes(q.text, f"{gold.title}{gold.before}{gold.text}", q.answers, q.article, pool, rng, most)


def change_constraint(question: str, context: str, answers: list[str], article: int, pool: ConstraintPool,
                      rng: random.Random) -> str | None:
    """`question` with one of its constraints that `context` (the answer sentence, its title and the
    sentence before) states replaced by another of its kind, so the sentence visibly contradicts the
    new question; the new value appears nowhere in that context, so the sentence can no longer be
    read as answering it. None when the context states none of the question's constraints."""
    return next(iter(changes(question, context, answers, article, pool, rng, 1)), None)


def changes(question: str, context: str, answers: list[str], article: int, pool: ConstraintPool,
            rng: random.Random, most: int) -> list[str]:
    context = to_search_form(context)
    answers = [to_search_form(a) for a in answers]
    form = to_search_form(question)
    options = [(v, k) for v, k in constraints(question) if v in context and not any(v in a or a in v for a in answers)]
    rng.shuffle(options)
    found = []
    for value, kind in options:
        new = pool.other(value, kind, article, context, rng)
        if new:
            found.append(form.replace(value, new))
            if len(found) == most:
                break
    return found
