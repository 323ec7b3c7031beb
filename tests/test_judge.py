"""The trained judge as shipped: its weights are checked, and it tells the sentence that answers a
question from same-event sentences that do not (real seed sentences, the real model)."""
import shutil

import numpy as np
import pytest

from rag.judge import CARD, WEIGHTS, Candidate, Judge, JudgeMissingError, load_judge

TITLE = "宜昌市总工会深化职工疗休养"
ANSWER = "为整合旅游资源、实现优势互补,宜昌市总出台劳模(职工)疗休养基地管理办法(试行),并在全省建立15家疗休养基地,涵盖酒店、自然景区、红色参观地、特色乡村等各类疗休养资源。"
SAME_EVENT = [
    "根据《办法》,宜昌市总安排100万元对市直单位进行疗休养专项补助,各县市区总工会预算疗休养经费突破400万元。",
    "首次参加疗休养的对象包括医护人员、产业工人、环卫工人、社区工作者、快递员、教师等一线职工和优秀代表。",
    "据悉,2020年,宜昌市各级工会已组织2000余名抗疫一线职工代表开展疗休养活动,撬动文旅消费千万元,为疫后宜昌旅游业复苏做出了积极贡献。",
]


@pytest.fixture(scope="module")
def judge(config):
    return load_judge(config.embed_model_path)


def test_the_answer_sentence_is_judged_to_answer_and_same_event_sentences_are_not(judge, config):
    question = "宜昌市在全省建立了多少家疗休养基地？"
    scores = judge.score(question, [Candidate(ANSWER, TITLE)] + [Candidate(s, TITLE) for s in SAME_EVENT])
    assert scores[0] >= config.judge_threshold
    assert max(scores[1:]) < config.judge_threshold
    assert ((0 <= scores) & (scores <= 1)).all()


def test_a_question_about_another_year_is_not_answered_by_this_years_sentence(judge):
    sentence = [Candidate(SAME_EVENT[2], TITLE)]
    asked = judge.score("2020年宜昌市各级工会组织了多少名抗疫一线职工代表开展疗休养活动？", sentence)[0]
    other_year = judge.score("2018年宜昌市各级工会组织了多少名抗疫一线职工代表开展疗休养活动？", sentence)[0]
    assert other_year < asked


def test_a_question_the_archive_does_not_answer_is_judged_unanswered_by_every_sentence(judge, config):
    question = "上海市总工会2021年为多少名职工发放了疗休养补贴？"  # seeds_dev d14: same topic, another city and year
    scores = judge.score(question, [Candidate(s, TITLE) for s in [ANSWER] + SAME_EVENT])
    assert max(scores) < config.judge_threshold


def test_a_traditional_question_is_judged_like_the_simplified_one(judge):
    candidates = [Candidate(ANSWER, TITLE), Candidate(SAME_EVENT[0], TITLE)]
    simplified = judge.score("宜昌市在全省建立了多少家疗休养基地？", candidates)
    traditional = judge.score("宜昌市在全省建立了多少家療休養基地？", candidates)
    assert np.allclose(simplified, traditional, atol=1e-5)


def test_corrupt_weights_are_refused_by_their_checksum(tmp_path, config):
    weights, card = tmp_path / WEIGHTS.name, tmp_path / CARD.name
    shutil.copy(WEIGHTS, weights)
    shutil.copy(CARD, card)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(JudgeMissingError, match="corrupt"):
        Judge(config.embed_model_path, weights, card)


def test_missing_weights_name_what_is_missing(tmp_path, config):
    with pytest.raises(JudgeMissingError, match="not found"):
        Judge(config.embed_model_path, tmp_path / "none.safetensors", CARD)


def test_the_exported_graph_computes_what_was_trained(judge):
    """Answering runs the judge's exported graph without torch; it must be the network training produced."""
    import torch
    from safetensors.torch import load_file

    from rag.judge import encode, pair_text
    from rag.judge.model import CrossEncoder

    trained = CrossEncoder(judge.base, int(judge.card["trained_layers"]))
    trained.load_trained(load_file(str(judge.weights)))
    pairs = [pair_text("宜昌市在全省建立了多少家疗休养基地？", Candidate(s, TITLE)) for s in [ANSWER] + SAME_EVENT]
    judge.warm()
    ids, mask = encode(judge._tokenizer, pairs)
    with torch.inference_mode():
        expected = trained.eval()(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    assert np.allclose(judge.logits("宜昌市在全省建立了多少家疗休养基地？", [Candidate(s, TITLE) for s in [ANSWER] + SAME_EVENT]),
                       expected, atol=2e-3)
