"""Turn a follow-up ("那青海呢？", "新增会员多少人？") into a standalone question.

A follow-up that names nothing itself (or refers back: 那/其/它, it/they) is
read together with the last earlier question that did name something: the two
are joined for retrieval, and the model sees the earlier one as context.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from ..text.entities import chinese_entities, english_names

_REFERRING_ZH = re.compile(r"^(那|那么|还有|另外|此外|其中|其|它|他们|她们|它们|该|这|这个|这些|那个|那些|上述|同时|而)|[呢吗]？?$")
_REFERRING_EN = re.compile(r"\b(it|its|they|them|their|there|that|this|those|these|he|she|his|her)\b", re.I)


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
            return f"{question}（上一个问题：{earlier}）" if _is_chinese(question) else f"{question} (previous question: {earlier})"
    return question


def depends_on_context(question: str) -> bool:
    if not _is_chinese(question):
        return bool(_REFERRING_EN.search(question)) and not english_names(question)
    return bool(_REFERRING_ZH.search(question.strip())) or not chinese_entities(question)


def names_something(question: str) -> bool:
    return bool(chinese_entities(question) if _is_chinese(question) else english_names(question))


def _is_chinese(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))
