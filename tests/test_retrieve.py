from __future__ import annotations

import re

import pytest

from rag.text.script import to_search_form
from rag.retrieve import convex, rrf


def supports(passage, item) -> bool:
    text = to_search_form(passage.text)
    return passage.source in item["sources"] and all(any(re.search(p, text) for p in group) for group in item["must"])


def test_every_answerable_dev_question_finds_its_evidence_in_top5(any_assistant, qa_items):
    answerable = [q for q in qa_items if q["answerable"]]
    assert len(answerable) == 13
    missed = [q["id"] for q in answerable if not any(supports(p, q) for p in any_assistant.retrieve(q["question"], k=5))]
    assert missed == []


@pytest.mark.parametrize(
    "simplified, traditional",
    [
        ("乐陵市总工会2022年成立了多少个基层工会？", "樂陵市總工會2022年成立了多少個基層工會？"),
        ("福州工匠学院为就读职工提供多少助学金？", "福州工匠學院為就讀職工提供多少助學金？"),
    ],
)
def test_traditional_and_simplified_questions_find_the_same_passages(any_assistant, simplified, traditional):
    a = [(p.source, p.start) for p in any_assistant.retrieve(simplified, k=3)]
    b = [(p.source, p.start) for p in any_assistant.retrieve(traditional, k=3)]
    assert a == b


def test_english_question_finds_chinese_evidence(any_assistant):
    passages = any_assistant.retrieve("How many outdoor worker rest stations has the Jinan Federation of Trade Unions built?", k=5)
    assert any("526" in p.text and p.source.startswith("000_") for p in passages)


def test_hybrid_ranks_at_least_as_well_as_either_side(any_assistant, qa_items):
    answerable = [q for q in qa_items if q["answerable"]]

    def first_hits(fusion):
        return sum(any(supports(p, q) for p in any_assistant.retrieve(q["question"], k=1, fusion=fusion)) for q in answerable)

    hybrid = first_hits(None)
    assert hybrid >= first_hits("dense") and hybrid >= first_hits("bm25")


def test_passages_carry_citation_fields(any_assistant, seed_files):
    raw = {f.name: f.read_text(encoding="utf-8") for f in seed_files}
    for p in any_assistant.retrieve("宜昌市在全省建立了多少家疗休养基地？", k=5):
        assert p.source in raw and p.title and p.score > 0
        assert 0 <= p.start < p.end <= len(raw[p.source])
        assert raw[p.source][p.start] == p.text[0]


def test_no_near_duplicate_passages(any_assistant):
    passages = any_assistant.retrieve("银川市总工会公益课开设了哪些培训班？", k=8)
    texts = [p.text for p in passages]
    assert len(set(texts)) == len(texts)


def test_rrf_rewards_agreement():
    fused = rrf([[(1, 0.9), (2, 0.8)], [(2, 5.0), (3, 4.0)]], [1.0, 1.0], 60)
    assert [i for i, _ in fused][:1] == [2]
    assert {i for i, _ in fused} == {1, 2, 3}


def test_convex_fusion_rewards_agreement_and_honours_weights():
    dense = [(1, 0.90), (2, 0.88), (3, 0.80)]
    lexical = [(3, 9.0), (2, 5.0), (1, 1.0)]
    assert convex([dense, lexical], [1.0, 1.0])[0][0] == 2
    assert convex([dense, lexical], [1.0, 3.0])[0][0] == 3
    assert convex([dense, []], [1.0, 3.0])[0][0] == 1  # English question: no BM25 terms, dense alone decides
