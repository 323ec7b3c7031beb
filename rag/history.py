"""Turn a follow-up ("那青海呢？", "How many of them…") into a standalone question for retrieval."""
from __future__ import annotations

import re
from collections.abc import Sequence

from .entities import chinese_entities as named_entities

_REFERRING_ZH = re.compile(r"^(那|那么|还有|另外|此外|其中|其|它|他们|她们|它们|该|这|这个|这些|那个|那些|上述|同时|而)|[呢吗]？?$")
_REFERRING_EN = re.compile(r"\b(it|its|they|them|their|there|that|this|those|these|he|she|his|her)\b", re.I)
_YEAR = re.compile(r"(19|20)\d\d年?")


def user_turns(history: Sequence | None) -> list[str]:
    """Previous user messages from (user, assistant) pairs or {'role', 'content'} messages."""
    turns = []
    for item in history or []:
        if isinstance(item, dict):
            if item.get("role") == "user" and isinstance(item.get("content"), str):
                turns.append(item["content"])
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            turns.append(item[0])
    return turns


def standalone_question(question: str, history: Sequence | None) -> str:
    previous = user_turns(history)
    if not previous or not _depends_on_context(question):
        return question
    for earlier in reversed(previous):
        context = _context_terms(earlier)
        if context:
            return f"{context} {question}"
    return question


def _depends_on_context(question: str) -> bool:
    if not re.search(r"[\u4e00-\u9fff]", question):
        capitalised = re.findall(r"\b[A-Z][a-z]+", question[1:])
        return bool(_REFERRING_EN.search(question)) and not capitalised
    return bool(_REFERRING_ZH.search(question.strip())) or not named_entities(question)


def _context_terms(question: str) -> str:
    if not re.search(r"[\u4e00-\u9fff]", question):
        return " ".join(re.findall(r"\b[A-Z][A-Za-z]+(?:\s+[A-Z][A-Za-z]+)*", question[1:]))
    terms = named_entities(question) + [m.group() for m in _YEAR.finditer(question)]
    return " ".join(dict.fromkeys(terms))
