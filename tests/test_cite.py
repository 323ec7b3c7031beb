from __future__ import annotations

from rag.text.numbers import contains_scaled, number_form, scaled_numbers
from rag.answering.cite import verify
from rag.types import Passage

PASSAGES = [
    Passage("宜昌市在全省建立15家疗休养基地。", "000.txt", "宜昌", 1.0, 0, 16),
    Passage("青海省总工会先期安排50万元专项资金。", "001.txt", "青海", 0.9, 0, 18),
]


def test_correct_marker_is_kept_and_moved_before_the_full_stop():
    cited = verify("宜昌市建立了15家疗休养基地。[1]", PASSAGES, "宜昌市建立了多少家疗休养基地？", "zh-Hans")
    assert cited.text == "宜昌市建立了15家疗休养基地[1]。"
    assert [p.source for p in cited.citations] == ["000.txt"]


def test_wrong_marker_is_moved_to_the_passage_holding_the_fact():
    cited = verify("安排了50万元[1]。", PASSAGES, "青海安排了多少资金？", "zh-Hans")
    assert [p.source for p in cited.citations] == ["001.txt"]
    assert cited.text == "安排了50万元[1]。"  # renumbered: the only citation is [1]


def test_missing_marker_is_attributed():
    cited = verify("共有15家。", PASSAGES, "宜昌有多少家基地？", "zh-Hans")
    assert cited.text == "共有15家[1]。" and cited.citations[0].source == "000.txt"


def test_invented_number_is_flagged_not_hidden():
    cited = verify("宜昌建立了15家基地，另有99家酒店[1]。", PASSAGES, "宜昌有多少家基地？", "zh-Hans")
    assert cited.unverified == ["99"] and "99未见于引用的文章" in cited.text
    assert not cited.unsupported  # 15 is supported


def test_answer_resting_only_on_invented_facts_is_unsupported():
    assert verify("全国总工会主席是胡锦涛[1]。", PASSAGES, "全国总工会主席是谁？", "zh-Hans").unsupported
    assert verify("The capital of France is Paris.[1]", PASSAGES, "What is the capital of France?", "en").unsupported


def test_numbers_from_the_question_are_not_flagged():
    cited = verify("2022年宜昌建立了15家基地[1]。", PASSAGES, "2022年宜昌建立了多少家基地？", "zh-Hans")
    assert cited.unverified == []


def test_thousands_separators_and_multi_markers():
    passages = [Passage("共服务职工12,500人次。", "a.txt", "t", 1, 0, 9)]
    cited = verify("服务了12500人次[1,2]。", passages, "服务了多少人次？", "zh-Hans")
    assert cited.text == "服务了12500人次[1]。" and cited.unverified == []


def test_marker_on_a_passage_without_the_named_answer_is_moved():
    passages = [
        Passage("梵语在社交中口头使用，书写系统的选择受抄写者所处地域的影响。", "001.txt", "梵文", 1.0, 0, 30),
        Passage("西藏同时还使用一种叫做瓦德体的字体来书写梵文，它只是兰札体的一种无头化变体。", "002.txt", "梵文", 0.8, 0, 38),
    ]
    cited = verify("兰札体去掉头会是瓦德体[1]。", passages, "兰札体如果去掉头会是什么书写体？", "zh-Hans")
    assert [p.source for p in cited.citations] == ["002.txt"] and cited.text == "兰札体去掉头会是瓦德体[1]。"
    kept = verify("兰札体去掉头会是瓦德体[2]。", passages, "兰札体如果去掉头会是什么书写体？", "zh-Hans")
    assert [p.source for p in kept.citations] == ["002.txt"]


def test_a_number_the_article_writes_in_chinese_numerals_is_supported_in_digits():
    passages = [Passage("如今书屋已有藏书两万册，王世杰称该条约可保中苏三十年的和平。", "a.txt", "t", 1, 0, 30)]
    cited = verify("该条约可换30年的和平，书屋藏书20000册[1]。", passages, "该条约可换多少年的和平？", "zh-Hans")
    assert cited.unverified == [] and [p.source for p in cited.citations] == ["a.txt"]
    assert verify("该条约可换40年的和平[1]。", passages, "该条约可换多少年的和平？", "zh-Hans").unverified == ["40"]


def test_number_form_adds_digits_only_where_the_text_has_chinese_numerals():
    assert number_form("共服务职工12,500人次。") == "共服务职工12500人次。"
    assert number_form("当天,一千八百一十名货车司机加入工会。").endswith("1810名货车司机加入工会。")


def test_a_number_keeps_the_wan_or_yi_that_scales_it():
    assert scaled_numbers("补助100万元，建成100家，投资1.5亿元，共12,500人") == ["100万", "100", "1.5亿", "12500"]
    assert contains_scaled(number_form("投入100余万元"), "100万")
    assert contains_scaled(number_form("惠及三十万人"), "30万")
    assert contains_scaled(number_form("投入1000000元"), "100万")
    assert not contains_scaled(number_form("投入100万元"), "100")
    assert contains_scaled(number_form("建成100家"), "100") and not contains_scaled(number_form("建成100家"), "100万")
