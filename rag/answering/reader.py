"""Read the evidence: the model quotes the sentence it relies on, then answers; both are checked.

The contract with the model is two lines:

    原文：<a fragment copied from the evidence>
    答案：<one sentence that answers, with its [n] marker>

A 1.5B model that first copies the supporting fragment answers questions it
otherwise calls "not found", and the fragment makes the answer checkable:

1. the quote must be found in a retrieved passage (tolerant of script, width and
   punctuation); a quote the model wrote itself (often its answer, or the question) is
   no support, and its answer is held back until check 3 finds it a sentence;
2. the quoted sentence must be one the judge (`rag.judge`) accepts as answering the
   question (the follow-up's earlier topic included). This is checked *before* any
   answer text is shown, so an answer borrowed from a same-event sentence that does not
   state the thing asked is never streamed. A rejected quote is treated like one of the
   model's own: it often sits beside the sentence the answer comes from;
3. a question for a number or a year needs one in the answer, and the answer's new
   facts (numbers, 《titles》, and the characters and Latin-letter words it adds to the
   question) must come from the quoted sentence; when the quote was the model's own, from
   a sentence it was shown that passes check 2, which is then the cited span. Numbers must
   be in a sentence the judge accepts, not in a neighbour it does not, and at their scale
   (100家 is not the 100 of 100万元). They are checked as they are written, so a stray one
   stops the generation there; a sentence's Chinese numerals count as digits (三十年 holds
   30), and the answer then shows them as the article spells them.

The model is asked only when the judge accepts a sentence of the evidence. When it finds
nothing, or a check fails, and the judge holds some sentence more likely than not to answer
(`judge_insist`), it is asked once more, in a second turn after the first prompt (still
in llama.cpp's cache, so only the new turn is read), without the "not found" way out: with the
sentences a wider selection adds, or, when the judge rejected its quote and no sentence it was
shown holds its answer, naming the sentences the judge accepts (it had copied the sentence beside
the answer). That answer is shown only after it passes the same checks. Otherwise the question is
refused.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from .evidence import Evidence, Selection, as_judged, best_judged
from .prompt import (NOTHING_QUOTED, build_messages, build_redirect_messages, build_retry_messages, leaks_system_prompt,
                     opening, says_not_found)
from ..config import Config
from ..judge import Judge
from ..text.entities import absent_entities
from ..text.lexicon import GLUE, NUMBER_ASKED
from ..text.markers import strip_markers
from ..text.numbers import contains_scaled, number_form, number_pattern, numbers, scaled_numbers, spelled_as
from ..text.script import HAN, in_script, normalised, to_search_form
from ..text.sentences import split_sentences
from ..text.terms import han_bigrams
from ..types import Passage, Question, Refusal

_QUOTE_LABEL = re.compile(r"^\s*[*#>\s]*(原文|原句|引文|quote|source)\s*[:：]\s*", re.I)
_ANSWER_LABEL = re.compile(r"\n?\s*[*#\s]*(答案|回答|answer)\s*[:：]\s*", re.I)
_COPIED = 0.8  # share of a quote's characters that must match the passage, in order
# Once this many characters of a quote (normalised) are found word for word in the evidence, the
# rest of the copy is written for the model (see Reader._quote_then_answer).
_PLACED_AFTER = 12
_CLAUSE_END = re.compile(r"[。！？；!?;]|(?=\n)")  # a line end is not copied
_WRITING = re.compile(r"[\d.,，]+$")  # a number still being written (19… of 1925)
_TITLE = re.compile(r"《([^》]+)》")
_LATIN = re.compile(r"[a-z][a-z0-9]*(?:[.'-][a-z0-9]+)*")  # a word in search form (lowercase)
_REDIRECT_TO = 2  # the judge's best accepted sentences a rejected quote is pointed to
_NUMERAL = re.compile(r"\d|[零〇一二两三四五六七八九十百千万亿半]|数(?=[十百千万亿])")  # 数十, not 数学


class Generator(Protocol):
    """What the reader needs of an answer model (answering/backends.py has the three it ships with)."""

    name: str
    continues: bool  # whether `stream` can continue an answer it is given the start of (`prefix`)

    def stream(self, messages: list[dict], max_tokens: int, prefix: str = "") -> Iterator[str]: ...


class OffTopic(str):
    """A rejection that asking the same way again does not mend: the judge rejects the sentence the
    model quoted, and no sentence it was shown holds the answer and is accepted. Over the four
    bench sets a retry with wider evidence answered 5 of 39 such questions, 2 of them rightly: asked
    again, the model mostly quotes the same sentence. So the second turn names the sentences the
    judge does accept (`Verdicts.answering`); with none, the question is refused at once."""


@dataclass
class Support:
    """Where the quote was found: passage number and span in its text, and the sentence around it."""

    passage: int
    start: int
    end: int
    sentence: str
    around: str  # the sentence with its neighbours
    context: str  # ... and the article title
    judged: float = 1.0  # the judge's probability that the sentence answers the question
    accepted: str = ""  # the other sentences the judge accepts, one a line

    @cached_property
    def around_form(self) -> str:
        """`around` as `text.numbers.number_form`: what an answer's words are looked up in."""
        return number_form(self.around)

    @cached_property
    def numbers_form(self) -> str:
        """Where an answer's numbers must be, as `text.numbers.number_form` (looked up once per token while it
        streams): the quoted sentence or another the judge accepts, never a neighbour it did not
        accept. A same-event neighbour's figure (宜昌's 100万元 subsidy for its count of 基地,
        a province's 150万元 for its own budget) is the confident wrong answer of a near miss."""
        return number_form(f"{self.sentence}\n{self.accepted}")


@dataclass
class Reading:
    """What the reader made of the evidence."""

    answer: str | None  # None: nothing the checks accept
    quote: str = ""
    support: Support | None = None
    retried: bool = False
    rejected: list[str] = field(default_factory=list)  # why earlier attempts were not used
    leaked: bool = False  # the answer repeated the model's instructions, so it is not given

    @property
    def refusal(self) -> Refusal | None:
        """Why the reader gives no answer (None when it gives one)."""
        if self.leaked:
            return Refusal("leak", "the answer repeats the model's instructions")
        if self.answer is None:
            return Refusal("reader", "; ".join(self.rejected) or "model found no answer")
        return None


def locate(quote: str, passages: list[Passage]) -> Support | None:
    """Find the quoted fragment in a passage: exactly after normalising, else the passage stretch
    around its longest common run that matches at least `_COPIED` of it (a model copying a sentence
    drops or adds a character or two)."""
    target, _ = normalised(strip_markers(quote).replace("…", ""))
    if len(target) < 2:
        return None
    best: tuple[int, int, int, int] | None = None  # (matched, passage, start, end)
    for number, passage in enumerate(passages):
        form, where = normalised(passage.text)
        at = form.find(target)
        if at >= 0:
            return support_at(passages, number, where[at], where[at + len(target) - 1] + 1)
        run = difflib.SequenceMatcher(None, target, form, autojunk=False).find_longest_match(0, len(target), 0, len(form))
        if not run.size:
            continue
        # the copy may skip words the evidence showed as "…": look a quote's length either side
        lo, hi = max(0, run.b - run.a - len(target)), min(len(form), run.b + 2 * len(target) - run.a)
        blocks = [b for b in difflib.SequenceMatcher(None, target, form[lo:hi], autojunk=False).get_matching_blocks() if b.size]
        matched = sum(b.size for b in blocks)
        if best is None or matched > best[0]:
            best = (matched, number, where[lo + blocks[0].b], where[lo + blocks[-1].b + blocks[-1].size - 1] + 1)
    if best is None or best[0] < max(4, _COPIED * len(target)):
        return None
    return support_at(passages, *best[1:])


def support_at(passages: list[Passage], number: int, start: int, end: int) -> Support:
    """A span of passage `number` as support: with its sentence, the neighbours and the title."""
    passage = passages[number]
    spans = split_sentences(passage.text) or [(0, len(passage.text))]
    inside = [i for i, (a, b) in enumerate(spans) if a < end and b > start] or [0]
    first, last = inside[0], inside[-1]
    sentence = passage.text[spans[first][0] : spans[last][1]]
    around = passage.text[spans[max(0, first - 1)][0] : spans[min(len(spans) - 1, last + 1)][1]]
    return Support(number, start, end, sentence, around, f"{passage.title}\n{around}")


class Verdicts:
    """The judge's probability that a sentence answers the question: read from the ranking the
    evidence came from where the judge already read that sentence, else read now (one pass)."""

    def __init__(self, judge: Judge, question: str, ranked: list[Evidence], passages: list[Passage], threshold: float):
        self.judge, self.question, self.ranked, self.passages, self.threshold = judge, question, ranked, passages, threshold

    def sure(self, probability: float) -> bool:
        """Whether the judge gives some sentence at least this probability of answering the question
        (a question it does not read, English, is left to the reader's other checks)."""
        return not self.judge.reads(self.question) or best_judged(self.ranked) >= probability

    def answering(self) -> list[Evidence]:
        """The sentences a quote may be, best first: the judge accepts them and their passage names
        the places, organisations and people the question names (`judged_problem`)."""
        return [e for e in self._accepted() if not self.absent(e.passage)]

    def _accepted(self) -> list[Evidence]:
        return [e for e in self.ranked if e.judged is not None and e.judged >= self.threshold]

    def absent(self, number: int) -> list[str]:
        """The question's names that passage `number` does not mention."""
        passage = self.passages[number]
        return absent_entities(self.question, f"{passage.title}\n{passage.text}")

    def accepted(self) -> str:
        """The sentences the judge accepts, one a line."""
        return "\n".join(e.text for e in self._accepted())

    def of(self, support: Support) -> float:
        if not self.judge.reads(self.question):
            return 1.0  # an English question: the quote is checked by the facts it gives (check 3)
        for e in self.ranked:
            if e.judged is not None and e.passage == support.passage and e.start < support.end and support.start < e.end:
                return e.judged
        candidate = as_judged(self.passages[support.passage], support.sentence, support.start)
        return float(self.judge.score(self.question, [candidate])[0])


def judged_problem(support: Support, verdicts: Verdicts) -> str:
    """Why the quoted sentence does not answer the question, or "" when it does: the places,
    organisations and people the question names (a follow-up's earlier topic included) must be in
    its passage, and the judge must accept it. The names are a hard fact the judge, which reads the
    sentence with little context, does not always weigh (新增会员多少人 after a question on 宜昌
    was answered from 乐陵's figures)."""
    missing = verdicts.absent(support.passage)
    if missing:
        return OffTopic(f"the quoted passage does not mention {'、'.join(missing)}")
    support.judged = verdicts.of(support)
    if support.judged < verdicts.threshold:
        return OffTopic(f"the judge gives the quoted sentence {support.judged:.2f} of answering the question")
    return ""


def facts_problem(answer: str, asked: str, support: Support, lang: str, config: Config) -> str:
    """Why the answer is not what the quoted sentence (with its neighbours) says, or "" when it is.

    A question for a number or a year needs one in the answer. The answer's numbers must be in
    the sentence or another the judge accepts (`Support.numbers_form`), its titles (《…》) in the
    sentence with its neighbours, and most of what it adds to the question: the new
    characters and Latin-letter words, or, when it only rearranges the question's characters
    (越南 → 南越), the new character pairs. An answer that adds nothing does not answer.
    """
    body = strip_markers(answer)
    if asks_for_number(asked) and not gives_number(body, asked):
        return "the question asks for a number and the answer gives none"
    stray = stray_numbers(body, asked, support)
    if stray:
        return f"{', '.join(stray)} not in the quoted sentence"
    source, question = support.around_form, to_search_form(asked)
    # a title in 《》 that the sentence does not name is the article header the evidence was shown under
    titles = [t for t in _TITLE.findall(body) if to_search_form(t) not in source and to_search_form(t) not in question]
    if titles:
        return f"《{'》《'.join(titles)}》 not in the quoted sentence"
    if lang == "en":  # an English answer shares no characters with the Chinese sentence: its numbers are the check
        return ""
    form = to_search_form(body)
    chars = set(HAN.findall(form)) - set(question) - GLUE
    words = {w for w in _LATIN.findall(form) if w not in question}  # a name in Latin letters (Fay Fuller, T.C.B.S)
    pairs = {p for p in han_bigrams(form) - han_bigrams(question) if not set(p) & GLUE}
    if chars or words:
        share = (sum(c in source for c in chars) + sum(w in source for w in words)) / (len(chars) + len(words))
    elif set(numbers(body)) - set(numbers(asked)):
        return ""  # its new facts are numbers, and they are in the sentence
    elif pairs:
        share = sum(p in source for p in pairs) / len(pairs)
    else:
        return "the answer adds nothing to the question"
    return "" if share >= config.reader_grounded_share else f"the answer says more than the quoted sentence ({share:.0%})"


def stray_numbers(answer: str, asked: str, support: Support) -> list[str]:
    """The answer's numbers that neither the question nor a sentence the judge accepts holds, at
    their scale (`text.numbers.scaled_numbers`)."""
    named = set(scaled_numbers(asked))
    return [n for n in scaled_numbers(answer) if n not in named and not contains_scaled(support.numbers_form, n)]


def as_written(answer: str, support: Support, lang: str) -> str:
    """The answer with each number it wrote in digits where the sentence spells it in Chinese numerals
    (30年 for 三十年) spelled as the sentence does: the reader sees the article's own words. Citation
    markers are not numbers of the answer ([1] stays [1], not [一])."""
    if lang == "en":
        return answer
    for number in dict.fromkeys(numbers(strip_markers(answer))):
        spelled = spelled_as(number, support.around)
        if spelled:
            answer = re.sub(rf"(?<!\[){number_pattern(number)}(?!\])", in_script(spelled, lang), answer)
    return answer


def asks_for_number(question: str) -> bool:
    """多少, 几, 哪一年, how many…: the answer must hold a number (digits or Chinese numerals)."""
    return bool(NUMBER_ASKED.search(to_search_form(question)))


def gives_number(answer: str, asked: str) -> bool:
    """Whether the answer holds a number (digits or Chinese numerals) besides those the question names."""
    form = to_search_form(answer)
    for number in numbers(asked):
        form = form.replace(number, "")
    return bool(_NUMERAL.search(form))


def answer_support(answer: str, asked: str, evidence: list[Evidence], passages: list[Passage], lang: str,
                   config: Config, verdicts: Verdicts) -> Support | None:
    """The sentence an answer rests on when its quote does not say: of the evidence the model was
    shown, a sentence that holds what the answer adds (`facts_problem`, with its neighbours) and
    the judge accepts (`judged_problem`); if several do, the one holding the answer itself,
    then the one the judge rates highest. None for an English answer, which shares no
    characters with the sentence to find it by."""
    if lang == "en":
        return None
    found = []
    for e in evidence:
        candidate = support_at(passages, e.passage, e.start, e.end)
        if facts_problem(answer, asked, candidate, lang, config) or judged_problem(candidate, verdicts):
            continue
        alone = dataclasses.replace(candidate, around=candidate.sentence)
        found.append(((not facts_problem(answer, asked, alone, lang, config), candidate.judged), candidate))
    return max(found, key=lambda f: f[0])[1] if found else None  # the first of equals


class Reader:
    """Runs the quote-then-answer contract on one question; yields answer text pieces, returns a Reading."""

    def __init__(self, generator: Generator, config: Config, verdicts: Verdicts):
        self.generator = generator
        self.config = config
        self.verdicts = verdicts

    def read(self, question: Question, selection: Selection, passages: list[Passage]) -> Iterator[str]:
        """Yields the answer as it streams (a retried one is given whole by the Reading); returns the Reading."""
        reading = yield from self._turns(question, selection, passages)
        if reading.answer is not None and leaks_system_prompt(reading.answer):
            return dataclasses.replace(reading, answer=None, leaked=True)
        return reading

    def _turns(self, question: Question, selection: Selection, passages: list[Passage]) -> Iterator[str]:
        """The first turn, and the second when the first gives no answer the checks accept and the judge
        holds that some sentence answers."""
        query, lang, evidence = question.query, question.lang, selection.shown
        reading = Reading(None)
        messages = build_messages(query, evidence, passages, lang)
        attempt = yield from self._attempt(question, messages, evidence, passages, stream=True)
        if isinstance(attempt, Reading):
            return attempt
        reading.rejected.append(attempt)
        if not self.verdicts.sure(self.config.judge_insist):
            return reading  # the second turn says the answer is there: only when the judge says so
        first = {(e.passage, e.start) for e in evidence}
        if isinstance(attempt, OffTopic):
            # pointed at the sentences the judge accepts (the gate let the question through, so one is)
            answering = sorted(self.verdicts.answering()[:_REDIRECT_TO], key=lambda e: (e.passage, e.start))
            if not answering:
                return reading
            messages = build_redirect_messages(query, evidence, answering, passages, lang)
            wider = answering
        else:
            wider = selection.wider
            messages = build_retry_messages(query, evidence, wider, passages, lang)
        shown = evidence + [e for e in wider if (e.passage, e.start) not in first]
        attempt = yield from self._attempt(question, messages, shown, passages, stream=False)
        if isinstance(attempt, Reading):
            attempt.retried, attempt.rejected = True, reading.rejected
            return attempt
        reading.rejected.append(attempt)
        reading.retried = True
        return reading

    def _attempt(self, question: Question, messages: list[dict], evidence: list[Evidence], passages: list[Passage],
                 stream: bool) -> Iterator[str]:
        """One generation: a Reading when every check passes, else the reason (str)."""
        asked, lang = question.asked, question.lang
        pieces = self._quote_then_answer(messages)
        text, quote, support, held, off_topic = "", None, None, "", ""
        sent = 0  # characters of the answer streamed so far
        try:
            for piece in pieces:
                text += piece
                if quote is None:
                    label = _ANSWER_LABEL.search(text)
                    if not label:
                        if _QUOTE_LABEL.sub("", text).strip() in NOTHING_QUOTED and "\n" in text:
                            return "the model quoted nothing"
                        continue
                    quote = _QUOTE_LABEL.sub("", text[: label.start()]).strip()
                    if quote.strip("。. ") in NOTHING_QUOTED:
                        return "the model quoted nothing"
                    support = locate(quote, passages)
                    if support is not None:
                        problem = judged_problem(support, self.verdicts)
                        if problem and not isinstance(problem, OffTopic):
                            return problem
                        if problem:  # a model often quotes the sentence beside the one it answers from
                            support, off_topic = None, problem
                        else:  # its facts may come from any sentence the judge accepts; cited where they are
                            accepted = self.verdicts.accepted()
                            support = dataclasses.replace(support, around=f"{support.around}\n{accepted}", accepted=accepted)
                    # else the model wrote its own sentence (often the answer, or the question): its
                    # answer is held until a sentence of the evidence is found to carry it
                    text = text[label.end() :]
                    held = text
                elif held is not None:
                    held += piece
                if held is not None:
                    state = opening(held)
                    if state == "not_found":
                        return "the model found no answer"
                    if state != "answer" or support is None:
                        continue  # held until it is known not to be a refusal, or until a sentence holds it
                    held = None
                # a number written whole that the quoted sentence does not hold ends the attempt there
                stray = stray_numbers(strip_markers(_WRITING.sub("", text)), asked, support)
                if stray:
                    return f"{', '.join(stray)} not in the quoted sentence"
                if stream:
                    yield in_script(text[sent:], lang)
                    sent = len(text)
        finally:
            pieces.close()  # releases the model before a retry
        if quote is None:
            rest = _QUOTE_LABEL.sub("", text).strip().strip("。. ")
            if rest in NOTHING_QUOTED or says_not_found(rest):
                return "the model quoted nothing"
            return f"the model did not follow the quote-then-answer form: {text.strip()[:60]}"
        answer = in_script(text.strip(), lang)
        placed = support is not None
        if stream and placed and text[sent:].strip():
            yield in_script(text[sent:].rstrip(), lang)  # a short answer still held when the model stopped
        if not answer or says_not_found(answer):
            return "the model found no answer"
        if not placed:  # no declared support: the answer must find its own among the sentences read
            support = answer_support(answer, asked, self._read(evidence), passages, lang, self.config, self.verdicts)
            if support is None:
                return off_topic or f"the quote is in no passage: {quote[:40]}"
            quote = passages[support.passage].text[support.start : support.end]
            if stream:
                yield answer
            return Reading(as_written(answer, support, lang), quote, support)
        # A quote the model chose binds its answer: one that says more than it is retried, not re-supported
        # (on the tuning set, looking for another sentence kept two wrong answers the retry would have fixed).
        problem = facts_problem(answer, asked, support, lang, self.config)
        if problem:
            return problem
        if lang != "en" and facts_problem(answer, asked, dataclasses.replace(support, around=support.sentence), lang, self.config):
            # its facts are in a neighbour of the quoted sentence: cite the one that holds them
            support = answer_support(answer, asked, self._read(evidence), passages, lang, self.config, self.verdicts) or support
        return Reading(as_written(answer, support, lang), quote, support)

    def _read(self, evidence: list[Evidence]) -> list[Evidence]:
        """The sentences an answer may rest on: those shown, then the others the judge read (the
        judge reads a sentence with the one before it, so it may rank the neighbour of the sentence
        holding the answer above it, and show the model only that neighbour)."""
        shown = {(e.passage, e.start) for e in evidence}
        return evidence + [e for e in self.verdicts.ranked if e.judged is not None and (e.passage, e.start) not in shown]

    def _quote_then_answer(self, messages: list[dict]) -> Iterator[str]:
        """The model's reply. Once its quote is found word for word in the evidence it was shown
        (`_PLACED_AFTER` characters), the rest of the sentence is copied for it and it goes on from
        the answer label: llama.cpp reads those tokens in one batch, about three times faster than
        the model writes them, and the model sees the same quote it would have written."""
        budget = self.config.max_answer_tokens + self.config.max_quote_tokens
        pieces = self.generator.stream(messages, budget)
        shown = "\n".join(m["content"] for m in messages if m["role"] == "user")
        form, where = normalised(shown) if getattr(self.generator, "continues", False) else ("", [])
        text = ""
        try:
            for piece in pieces:
                text += piece
                yield piece
                rest = form and _rest_of_quote(text, shown, form, where)
                if rest:
                    pieces.close()
                    yield rest + "\n答案："
                    pieces = self.generator.stream(messages, self.config.max_answer_tokens, prefix=text + rest + "\n答案：")
                    yield from pieces
                    return
        finally:
            pieces.close()


def _rest_of_quote(reply: str, shown: str, form: str, where: list[int]) -> str:
    """For a reply still copying its quote: the rest of the sentence it is copying from `shown`, once
    enough of it is copied to know which ("" until then)."""
    if not _QUOTE_LABEL.match(reply) or _ANSWER_LABEL.search(reply):
        return ""
    quote = _QUOTE_LABEL.sub("", reply)
    if "\n" in quote.strip():
        return ""
    target, _ = normalised(strip_markers(quote))
    at = form.find(target)
    if len(target) < _PLACED_AFTER or at < 0 or form.find(target, at + 1) >= 0:
        return ""  # too short to place, or copied from more than one place
    after = where[at + len(target) - 1] + 1
    end = _CLAUSE_END.search(shown, after)
    return shown[after : end.end() if end else len(shown)].rstrip()
