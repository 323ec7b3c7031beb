"""Named things a question names, which the answer's passage must carry."""
from __future__ import annotations

import pytest

from rag.text.entities import absent_entities, chinese_entities, unsupported_names


@pytest.mark.parametrize("question, names", [
    ("宜昌市在全省建立了多少家疗休养基地？", ["宜昌市"]),
    ("济南和淄博分别建有多少家户外劳动者驿站？", ["济南", "淄博"]),
    ("樂陵市總工會2022年成立了多少個基層工會？", ["乐陵市"]),
    # the noun after a question word is the kind of thing asked for, not a name
    ("美國南北戰爭期間，南方邦聯成立之初首都是哪一個都市？", ["美国", "邦联"]),
    ("哪个城市的工会建了驿站？", []),
    ("哪个国家的总统访问了北京？", ["北京"]),
    # jieba's dictionary has 和宜兰 as one name: the conjunction is not part of it
    ("新竹縣和宜蘭廳是在哪一國家統治台灣時設立的？", ["新竹县", "宜兰", "台湾"]),
    ("哪一個事件於445-446年時於北魏發生?", ["北魏"]),  # ... and 于北魏 is the preposition and the name
])
def test_names_of_a_question(question, names):
    assert chinese_entities(question) == names


def test_a_name_the_tagger_glued_a_character_to_is_found_bare():
    """jieba tags 明崇禎 (the Ming emperor) and 亞太區 as names; the articles write 崇祯帝 and 亚太地区."""
    assert absent_entities("明崇禎帝自縊後，南京朝臣擁立誰為新帝?", "崇祯帝自缢于煤山，南京的朝臣拥立福王。") == []
    assert absent_entities("亞太區第一個合法化同性婚姻的國家是哪一個?", "台湾成为亚太地区第一个……") == []
    # a two-character name must be there whole: 宜昌 is not 宜宾
    assert absent_entities("宜昌市在全省建立了多少家疗休养基地？", "宜宾市在全省建立了15家疗休养基地。") == ["宜昌市"]


def test_a_latin_letter_name_the_passages_write_is_supported():
    passages = "Fay Fuller协同Van Trump和其他三位队友，成为第一位首登瑞尼尔山的女性。济南市总工会建成526个驿站。"
    question = "第一位登上瑞尼尔山脉的女性叫什么名字？"
    assert unsupported_names("Fay Fuller", question, passages) == []
    assert unsupported_names("Annie Peck", question, passages) == ["Peck"]  # a sentence-initial word is not taken for a name
    assert unsupported_names("Jinan has 526 stations.", "How many stations?", passages) == []  # pinyin of 济南
    # a name is matched as a word, not inside another one
    assert unsupported_names("The climber was Van Trump", question, "Vanessa和Trumpet登上了山。") == ["Van", "Trump"]
