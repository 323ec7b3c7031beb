"""Feedback as a question set in `rag eval`'s JSONL format, so what users marked is re-checked.

- An answer marked right becomes a regression case: the facts it gave (numbers, names) must
  come back, from the file it cited; a refusal marked right must stay a refusal.
- An answer marked wrong becomes a case to fix: the facts it gave must not come back
  (`must_not`), and the facts the user's note gives, if any, must. With no fact in the note it
  is not known whether the archive holds the answer (`answerable` null): a refusal or any
  other answer passes.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .journal import Turn
from ..evaluate import normalise
from ..text.entities import chinese_entities
from ..text.markers import strip_markers
from ..text.numbers import number_pattern
from ..text.script import language_of

# Numbers as `rag eval` sees them (thousands commas kept: it grades the answer's text as written,
# unlike text.numbers.numbers, which drops them to look numbers up in passages).
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_MOST_FACTS = 3


def facts(text: str, question: str = "") -> list[str]:
    """What an answer states that can be checked again: its numbers, else the names it gives
    that the question does not, in the form `rag eval` compares (simplified, NFKC)."""
    text = normalise(strip_markers(text))
    asked_numbers = set(_NUMBER.findall(normalise(question)))  # whole numbers: 1 is not asked by 2021
    numbers = [n for n in _NUMBER.findall(text) if n not in asked_numbers]
    if numbers:
        return list(dict.fromkeys(numbers))[:_MOST_FACTS]
    asked = set(chinese_entities(question)) if question else set()
    return [n for n in chinese_entities(text) if n not in asked][:_MOST_FACTS]


def pattern(fact: str) -> str:
    """A fact as a regular expression; a number is not matched inside a longer one (15 ≠ 150)."""
    return number_pattern(fact) if fact[0].isdigit() else re.escape(fact)


def case(turn: Turn) -> dict:
    item = {"id": f"feedback-{turn.id}", "question": turn.question, "lang": language_of(turn.question),
            "feedback": "right" if turn.rating == 1 else "wrong", "note": turn.note, "answer": turn.answer,
            "model": turn.model, "asked": turn.created}
    if turn.rating == 1:
        given = [] if turn.refused else facts(turn.answer, turn.question)
        item.update(answerable=not turn.refused, must=[[pattern(f)] for f in given],
                    sources=sorted({c["source"] for c in turn.citations}))
        return item
    wanted = facts(turn.note, turn.question) if turn.note else []
    item.update(answerable=True if wanted else None, must=[[pattern(f)] for f in wanted])
    if not turn.refused:
        item["must_not"] = [[pattern(f)] for f in facts(turn.answer, turn.question)]
    return item


def export(turns: list[Turn], path: Path) -> int:
    """Write the marked answers as a question set (written whole, then moved into place)."""
    lines = [json.dumps(case(t), ensure_ascii=False) for t in turns if t.rating in (1, -1)]
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    partial.replace(path)
    return len(lines)
