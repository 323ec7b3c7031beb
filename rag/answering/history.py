"""Turn a follow-up ("那青海呢？", "新增会员多少人？") into a standalone question.

A follow-up that names nothing itself (or refers back: 那/其/它, it/they) is
read together with the last earlier question that did name something: the two
are joined for retrieval, and the model sees the earlier one as context.
"""
from __future__ import annotations

from collections.abc import Sequence

from ..text.entities import chinese_entities, english_names
from ..text.lexicon import REFERRING_EN, REFERRING_ZH
from ..text.script import has_han



def user_turns(history: Sequence | None) -> list[str]:
    """Previous user messages from (user, assistant) pairs or {'role', 'content'} messages."""
    turns = []
    for item in history or []:
        if isinstance(item, dict):
            if item.get("role") == "user":
                turns.append(message_text(item.get("content")))
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            turns.append(item[0])
    return [t for t in turns if t]


def message_text(content: object) -> str:
    """Chat message content as text: a string, or Gradio's list of {'type': 'text', 'text': …} blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return ""


def standalone_question(question: str, history: Sequence | None) -> str:
    previous = user_turns(history)
    if not previous or not depends_on_context(question):
        return question
    for earlier in reversed(previous):
        if names_something(earlier):
            return f"{question}（上一个问题：{earlier}）" if has_han(question) else f"{question} (previous question: {earlier})"
    return question


def depends_on_context(question: str) -> bool:
    if not has_han(question):
        return bool(REFERRING_EN.search(question)) and not english_names(question)
    return bool(REFERRING_ZH.search(question.strip())) or not chinese_entities(question)


def names_something(question: str) -> bool:
    return bool(chinese_entities(question) if has_han(question) else english_names(question))

