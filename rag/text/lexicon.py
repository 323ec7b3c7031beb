"""The word lists of the language toolkit, in one place: what each list is for is said beside it.

Lists that depend on the prompt's wording (a reply's "not found" phrases) live with the prompt
(`answering/prompt.py`), built from the same constants.
"""
from __future__ import annotations

import re

# Function characters: they say nothing of what a sentence is about (cite and reader compare wording without them).
GLUE = set("的了是在和与及为由于被把将对从也都就而其这那有个之以所没不否")

# Words that say nothing about *which* fact is asked for (not terms of the question, never names).
QUESTION_WORDS = frozenset(
    "多少 几 哪 哪些 哪个 哪里 哪一 哪一种 哪一个 哪一年 哪位 哪种 哪儿 什么 什么样 什么时候 时候 东西 怎么 怎样 如何 为什么 为何 何时 何地 谁 是谁 "
    "多久 多高 多大 多长 多远 第几 是否 吗 呢 了 的 是 在 有 和 与 及 为 对 将 把 被 从 于 个 家 名 项 年 一位 一种 一个".split()
)
# Question words after which a noun is the kind of thing asked for (哪个**城市**), not a name.
ASKING = frozenset("哪 哪个 哪一 哪些 什么 何 哪一个 哪家 哪座".split())
# Conjunctions and prepositions jieba glues to a name (与济南), and counters between a question word and its noun.
GLUED = frozenset("和与及跟同于在从向对")
COUNTERS = frozenset("一 一个 个 家 座 位 所 种 一种 一家 一座".split())
# jieba's tags of places, organisations and people (not nz: it tags phrases such as 和平统一 with it).
NAMED_TAGS = ("ns", "nt", "nr")

# A question that asks the same thing of several subjects (济南和淄博**分别**…), and what joins the subjects.
DISTRIBUTIVE = ("分别", "各自", "各")
CONJUNCTIONS = frozenset({"和", "与", "及", "以及", "、", "跟", "同", ",", "，"})

# Questions for an amount: sentences with a number are preferred as evidence.
QUANTITY_ASKED = re.compile(r"多少|几|how (many|much)|what (percentage|share|proportion)|比例|面积|数量", re.I)
# Questions whose answer is a number or a year: an answer without one does not answer them.
NUMBER_ASKED = re.compile(r"多少|几|哪一?年|何年|多久|百分之|how (many|much|long|old)|(what|which) year|what percentage", re.I)

# Words a follow-up question uses for what an earlier question named (那么…呢？, "its"), so it needs that question.
REFERRING_ZH = re.compile(r"^(那|那么|还有|另外|此外|其中|其|它|他们|她们|它们|该|这|这个|这些|那个|那些|上述|同时|而)|[呢吗]？?$")
REFERRING_EN = re.compile(r"\b(it|its|they|them|their|there|that|this|those|these|he|she|his|her)\b", re.I)
