"""The near misses the judge is trained and measured on, built from a small set made here."""
import json
import random

from rag.judge import Candidate, pair_text
from rag.judge.pairs import ConstraintPool, Neighbours, changed_question, constraints, negatives, read_set

ARTICLE_ONE = [
    "乐陵市工人文化宫是职工的学校和乐园。2022年，文化宫组织志愿者提供了13152小时志愿服务。文化宫还开设了书法班。",
    "2021年，文化宫提供了9000小时志愿服务。济南市总工会为文化宫配备了图书。",
]
ARTICLE_TWO = ["淄博市总工会2020年建成户外劳动者驿站300余家。驿站配有饮水机和药箱。"]


def write_set(path):
    def paragraph(text, question=None, answer=None):
        qas = [] if question is None else [{"id": question[:6], "question": question,
                                            "answers": [{"text": answer, "answer_start": text.index(answer)}]}]
        return {"context": text, "qas": qas}

    data = {"data": [
        {"title": "乐陵文化宫", "paragraphs": [paragraph(ARTICLE_ONE[0], "2022年文化宫提供了多少小时志愿服务？", "13152小时"),
                                          paragraph(ARTICLE_ONE[1])]},
        {"title": "淄博驿站", "paragraphs": [paragraph(ARTICLE_TWO[0], "淄博市总工会建成了多少家户外劳动者驿站？", "300余家")]},
    ]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return read_set(path)


def test_the_answer_sentence_is_the_gold(tmp_path):
    corpus = write_set(tmp_path / "set.json")
    first = corpus.questions[0]
    assert [corpus.sentences[i].text for i in first.gold] == ["2022年，文化宫组织志愿者提供了13152小时志愿服务。"]
    assert corpus.sentences[first.gold[0]].before == "乐陵市工人文化宫是职工的学校和乐园。"
    assert corpus.sentences[first.gold[0]].title == "乐陵文化宫"


def test_negatives_come_from_the_paragraph_and_the_article_and_never_hold_the_answer(tmp_path):
    corpus = write_set(tmp_path / "set.json")
    first = corpus.questions[0]
    found = negatives(corpus, Neighbours(corpus), first, random.Random(0))
    kinds = {kind for _, kind in found}
    assert kinds == {"same_paragraph", "same_article"}
    assert all("13152" not in corpus.sentences[i].text for i, _ in found)
    same_article = [corpus.sentences[i] for i, kind in found if kind == "same_article"]
    assert all(s.article == first.article and s.paragraph != first.paragraph for s in same_article)


def test_a_changed_constraint_is_one_the_answer_sentence_states_swapped_for_another_of_its_kind(tmp_path):
    corpus = write_set(tmp_path / "set.json")
    changed = changed_question(corpus, ConstraintPool(corpus), corpus.questions[0], random.Random(0))
    assert changed is not None and "2022" not in changed
    year = [v for v, kind in constraints(changed) if kind == "year"]
    assert year and year[0] in {"2021", "2020"}  # years the archive mentions elsewhere
    assert year[0] not in corpus.sentences[corpus.questions[0].gold[0]].text


def test_no_change_when_the_answer_sentence_states_none_of_the_questions_constraints(tmp_path):
    corpus = write_set(tmp_path / "set.json")
    corpus.questions[1].text = "驿站配有什么？"
    assert changed_question(corpus, ConstraintPool(corpus), corpus.questions[1], random.Random(0)) is None


def test_the_judge_reads_either_script_the_same_way():
    simplified = pair_text("乐陵市总工会成立了多少个基层工会？", Candidate("共成立基层工会15个。", "乐陵工会", "2022年以来。"))
    traditional = pair_text("樂陵市總工會成立了多少個基層工會？", Candidate("共成立基層工會15個。", "樂陵工會", "2022年以來。"))
    assert simplified == traditional
    assert simplified[1].endswith("【共成立基层工会15个。】")


def test_the_sentence_after_the_answer_is_a_negative_and_sentences_carry_two_before(tmp_path):
    """At answering the judge reads a sentence with the two before it, so the one after an answer
    reads the answer as its context: it is trained as a near miss, not left to chance."""
    text = ("甲市总工会召开大会。会议由主席主持。2022年甲市总工会建成驿站48个。现场还举行了揭牌仪式。"
            "驿站配有饮水机。驿站配有药箱。驿站全天开放。")
    data = {"data": [{"title": "甲市驿站", "paragraphs": [{"context": text, "qas": [
        {"id": "q1", "question": "2022年甲市总工会建成了多少个驿站？", "answers": [{"text": "48个", "answer_start": text.index("48个")}]}]}]}]}
    (tmp_path / "set.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    corpus = read_set(tmp_path / "set.json")
    q = corpus.questions[0]
    gold = corpus.sentences[q.gold[0]]
    assert gold.context == "甲市总工会召开大会。会议由主席主持。" and gold.before == "会议由主席主持。"
    neighbours = Neighbours(corpus)
    for seed in range(10):  # it shares nothing with the question: only its place makes it a negative every time
        found = negatives(corpus, neighbours, q, random.Random(seed))
        assert q.gold[0] + 1 in {i for i, _ in found}
