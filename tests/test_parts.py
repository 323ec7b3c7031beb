"""Multi-part questions: each part answered from its own evidence, or said to be uncovered."""
from __future__ import annotations

import re

import pytest
from conftest import sharing

from rag.answering.parts import split_question


@pytest.mark.parametrize("question, parts", [
    ("济南和淄博分别建有多少家户外劳动者驿站？", ["济南建有多少家户外劳动者驿站？", "淄博建有多少家户外劳动者驿站？"]),
    ("乐陵市和宜昌市各成立了多少个基层工会？", ["乐陵市成立了多少个基层工会？", "宜昌市成立了多少个基层工会？"]),
    ("北京、上海和广州分别有多少人？", ["北京有多少人？", "上海有多少人？", "广州有多少人？"]),
    ("南京市总工会和福州市总工会分别做了什么？", ["南京市总工会做了什么？", "福州市总工会做了什么？"]),
    ("济南和淄博一共建有多少家驿站？", ["济南和淄博一共建有多少家驿站？"]),  # one total, one question
    ("宜昌市在全省建立了多少家疗休养基地？", ["宜昌市在全省建立了多少家疗休养基地？"]),
])
def test_distributive_questions_are_split_by_subject(question, parts):
    assert [p.question for p in split_question(question)] == parts


def test_every_part_is_answered_from_its_own_passage(assistant):
    bot = sharing(assistant)
    answer = bot.ask("济南和淄博分别建有多少家户外劳动者驿站？")
    lines = answer.text.split("\n")
    assert len(lines) == 2 and lines[0].startswith("济南：") and lines[1].startswith("淄博：")
    assert "526" in lines[0]
    assert "300" in lines[1] or "没有找到" in lines[1], lines[1]  # the article says 300余家, or the part is declined
    assert not re.search(r"(?<!\d)0家", lines[1])
    markers = {int(m) for m in re.findall(r"\[(\d+)\]", answer.text)}
    assert markers and max(markers) <= len(answer.citations)
