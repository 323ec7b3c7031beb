"""The reader's contract: quote, then answer; the quote must be real, on topic, and hold the answer."""
from __future__ import annotations

import dataclasses
import re

import pytest

from conftest import sharing
from rag import Assistant
from rag.loaders.decode import decode
from rag.text.script import normalised, to_search_form
from rag.config import Config
from rag.answering.evidence import Evidence, rank
from rag.text.sentences import split_sentences
from rag.judge import load_judge
from rag.answering.reader import OffTopic, Support, Verdicts, answer_support, as_written, facts_problem, judged_problem, locate, support_at
from rag.types import Answer, Passage, Refusal


class Scripted:
    """Stands in for the model to drive the contract's logic; records the prompts it was given."""

    name = "scripted"

    def __init__(self, *replies: str, continues: bool = False):
        self.replies, self.prompts, self.messages, self.closed = list(replies), [], [], 0
        self.continues, self.prefixes, self.served = continues, [], []

    def stream(self, messages, max_tokens, prefix=""):
        self.prompts.append(messages[-1]["content"])
        self.messages.append(messages)
        self.prefixes.append(prefix)
        self.served.append(0)
        try:
            for char in self.replies.pop(0):  # one character per piece, like tokens
                self.served[-1] += 1
                yield char
        finally:
            self.closed += 1


def scripted(assistant, *replies, continues: bool = False, **settings) -> tuple[Assistant, Scripted]:
    model = Scripted(*replies, continues=continues)
    return sharing(assistant, generator=model, **settings), model


@pytest.fixture(scope="module")
def default(assistant) -> Assistant:
    return sharing(assistant)


# ---- locating a quote ------------------------------------------------------------------

def test_a_quote_is_found_across_script_width_and_punctuation():
    passage = Passage("當天，1810名貨車司機、3941名快遞員加入工會組織。另有156名外賣配送員。", "a.txt", "题", 1.0, 0, 40)
    support = locate("当天,1810名货车司机、3941名快递员加入工会组织", [passage])
    assert support is not None and passage.text[support.start : support.end].startswith("當天，1810")
    assert support.sentence == "當天，1810名貨車司機、3941名快遞員加入工會組織。"
    assert locate("4000名快递员参加了培训活动并获得证书", [passage]) is None  # not in any passage


def _support(sentence: str) -> Support:
    return Support(0, 0, len(sentence), sentence, sentence, f"标题\n{sentence}")


def test_an_answers_facts_must_come_from_the_quoted_sentence():
    quoted = _support("在1957年有307座高级技术学校、46所高校和5个学院。")
    question = "在什么时候东德有46所高校？"
    assert facts_problem("东德在1957年有46所高校[1]。", question, quoted, "zh-Hans", Config()) == ""
    assert "1988" in facts_problem("在1988年，东德有46所高校[1]。", question, quoted, "zh-Hans", Config())
    diva = _support("梅艳芳，香港出生，香港歌影坛巨星，人称「乐坛大姐大」和「舞台女王」。")
    assert facts_problem("「舞台女王」指的是梅艳芳[1]。", "「舞台女王」指的是谁?", diva, "zh-Hans", Config()) == ""
    assert facts_problem("梅艳芳的丈夫是李嘉诚[1]。", "梅艳芳的丈夫是谁？", diva, "zh-Hans", Config())  # a name from nowhere
    assert facts_problem("梅艳芳是「舞台女王」。", "梅艳芳是「舞台女王」吗？", diva, "zh-Hans", Config())  # adds nothing
    # rearranging the question's own characters into the sentence's words is an answer
    rice = _support("越南是介于亚热带和热带的国家，南越地区还可以一年三获。")
    assert facts_problem("南越地区[1]", "越南的哪一地区种植稻米可以一年三次？", rice, "zh-Hans", Config()) == ""


def test_an_answer_naming_the_article_title_instead_of_the_sentence_is_not_read_from_it():
    """Evidence is shown under its article's title, 《台湾战后时期》; an answer naming that title
    did not come from the sentence."""
    music = _support("战后初期，音乐界配合「反共抗俄」的政策，创作了大量反共爱国歌曲。")
    question = "哪一政策影響了戰後初期的臺灣音樂界?"
    assert "臺灣戰後時期" in facts_problem("《臺灣戰後時期》[1]", question, music, "zh-Hant", Config())
    assert facts_problem("「反共抗俄」的政策[1]", question, music, "zh-Hant", Config()) == ""
    book = _support("1687年，牛顿出版了《自然哲学的数学原理》，详细地说明了两个物理理论。")
    assert facts_problem("《自然哲学的数学原理》[1]", "牛顿在哪本书中说明了两个物理理论?", book, "zh-Hans", Config()) == ""


def test_an_answers_number_must_be_in_a_sentence_the_judge_accepts_not_in_a_neighbour():
    """Same-event news: the sentence before the quoted one states the event's other figure (the judge
    read it as context and accepted the quote); the answer may take it only from a sentence the
    judge accepts itself."""
    before, sentence = "列支150万元为1000名返乡就业创业农民工提供技能培训。", "同时，各市总工会也将做出本级工作计划和经费预算。"
    quoted = Support(0, len(before), len(before + sentence), sentence, before + sentence, f"标题\n{before}{sentence}")
    question = "山东省总工会本级列支了多少专项经费扶持工友创业？"
    assert "150万" in facts_problem("150万元[1]", question, quoted, "zh-Hans", Config())
    accepted = dataclasses.replace(quoted, accepted=before)
    assert facts_problem("150万元[1]", question, accepted, "zh-Hans", Config()) == ""


def test_a_number_is_read_at_its_scale():
    """100家 is not the 100 of 100万元; 30万 is the 三十万 an article spells."""
    subsidy = _support("宜昌市总安排100万元对市直单位进行疗休养专项补助。")
    assert "100" in facts_problem("100家[1]", "宜昌市在全省建立了多少家疗休养基地？", subsidy, "zh-Hans", Config())
    assert facts_problem("100万元[1]", "宜昌市总安排多少钱补助市直单位疗休养？", subsidy, "zh-Hans", Config()) == ""
    crowd = _support("当天共有三十万人参加了活动。")
    assert facts_problem("30万人[1]", "当天有多少人参加了活动？", crowd, "zh-Hans", Config()) == ""
    assert "30" in facts_problem("30人[1]", "当天有多少人参加了活动？", crowd, "zh-Hans", Config())


def test_a_number_copied_in_digits_from_chinese_numerals_is_the_sentences():
    treaty = _support("王世杰回国称该条约可保中苏三十年的和平。")
    question = "王世杰称此条约可换多少年的和平?"
    assert facts_problem("该条约可换30年的和平[1]。", question, treaty, "zh-Hans", Config()) == ""
    assert "40" in facts_problem("该条约可换40年的和平[1]。", question, treaty, "zh-Hans", Config())


def test_a_number_copied_in_digits_is_shown_as_the_article_spells_it():
    treaty = _support("王世杰回国称该条约可保中苏三十年的和平，立法院以95人赞成通过条约，书屋藏书两万册。")
    assert as_written("该条约可换30年的和平[1]。", treaty, "zh-Hans") == "该条约可换三十年的和平[1]。"
    assert as_written("該條約以95人贊成通過，藏書20000冊[1]。", treaty, "zh-Hant") == "該條約以95人贊成通過，藏書兩萬冊[1]。"
    assert as_written("The treaty bought 30 years of peace.[1]", treaty, "en") == "The treaty bought 30 years of peace.[1]"
    # a citation marker is no number of the answer, though the sentence spells 一 (一线)
    frontline = _support("宜昌市在全省建立了15家疗休养基地，服务一线职工。")
    assert as_written("15家[1]", frontline, "zh-Hans") == "15家[1]"


def test_a_name_in_latin_letters_is_what_the_answer_adds():
    """An answer whose new fact is a name in Latin letters adds something, and it must be the sentence's."""
    climb = _support("1890年，Fay Fuller成为第一位登上雷尼尔山的女性。")
    question = "第一位登上雷尼尔山的女性叫什么名字？"
    assert facts_problem("Fay Fuller[1]", question, climb, "zh-Hans", Config()) == ""
    assert facts_problem("第一位登上雷尼尔山的女性是Fay Fuller[1]。", question, climb, "zh-Hans", Config()) == ""
    assert "more than the quoted sentence" in facts_problem("Annie Peck[1]", question, climb, "zh-Hans", Config())


def test_a_question_for_a_number_or_a_year_needs_one_in_the_answer():
    mac = _support("《Mac系列》是苹果公司继Apple Lisa后第二款具备图形使用者介面的个人电脑产品，1984年1月24日发布。")
    question = "在1984年1月24日發表了Mac第幾款?"
    assert facts_problem("第二款[1]", question, mac, "zh-Hans", Config()) == ""  # a Chinese numeral is a number
    # the question's own date is not an answer to it
    assert "number" in facts_problem("苹果公司在1984年1月24日发表了Mac[1]。", question, mac, "zh-Hans", Config())
    soga = _support("645年，中大兄皇子和中臣镰足合谋刺杀苏我入鹿，结束苏我氏的专权。")
    assert "number" in facts_problem("中大兄皇子刺杀苏我入鹿，结束苏我氏的专权[1]。", "蘇我氏的專權於何年結束?", soga, "zh-Hans", Config())
    assert facts_problem("苏我氏的专权于645年结束[1]。", "蘇我氏的專權於何年結束?", soga, "zh-Hans", Config()) == ""
    # 数 is a numeral in 数十 but not in 数学: a book's title is no year
    assert "number" in facts_problem("在《自然哲学的数学原理》中[1]", "牛頓運動定律在哪一年出版的書中被說明?", _support(
        "1687年，牛顿出版了《自然哲学的数学原理》。"), "zh-Hant", Config())
    assert facts_problem("数十家[1]", "有多少家企业参加?", _support("数十家企业参加了展会。"), "zh-Hans", Config()) == ""


def test_an_answer_rests_on_the_sentence_that_holds_it(config):
    text = "宜昌市总工会今年建设了一批职工之家。宜昌市在全省建立了15家疗休养基地。另有20个服务站点。"
    passage = Passage(text, "a.txt", "宜昌工会", 1.0, 0, len(text))
    spans = [(0, 18), (18, 36), (36, len(text))]
    evidence = [Evidence(0, text[a:b], a, b, 1.0) for a, b in spans]
    question = "宜昌市在全省建立了多少家疗休养基地？"
    verdicts = Verdicts(load_judge(config.embed_model_path), question, [], [passage], config.judge_threshold)
    support = answer_support("15家[1]", question, evidence, [passage], "zh-Hans", config, verdicts)
    assert support is not None and text[support.start : support.end] == "宜昌市在全省建立了15家疗休养基地。"
    assert support.judged >= config.judge_threshold
    assert answer_support("99家[1]", question, evidence, [passage], "zh-Hans", config, verdicts) is None
    assert answer_support("15 bases[1]", question, evidence, [passage], "en", config, verdicts) is None


# ---- the contract, driven by a scripted model -------------------------------------------

def test_nothing_quoted_is_retried_with_wider_evidence_and_never_shown(assistant):
    bot, model = scripted(assistant, "原文：无\n答案：資料中沒有提到。", "原文：全省建立了15家疗休养基地\n答案：宜昌市在全省建立了15家疗休养基地[1]。")
    items = list(bot.ask_stream("宜昌市在全省建立了多少家療休養基地？"))
    shown, final = "".join(items[:-1]), items[-1]
    assert "沒有" not in shown and "没有" not in shown and "15家" in shown and "原文" not in shown
    assert not final.refused and final.trace.retried and "15家" in final.text
    assert len(model.prompts) == 2 and model.closed == 2  # the abandoned generation was closed (its lock released)
    first, retry = model.messages
    assert retry[: len(first)] == first  # the first prompt again, so llama.cpp reads only the new turn
    assert retry[-1]["role"] == "user" and "不要写“原文：无”" in retry[-1]["content"]  # which takes the way out away


def test_the_second_turn_runs_only_when_the_judge_holds_a_sentence_likely_to_answer(assistant):
    """The second turn tells the model the answer is there: when the judge's best sentence is less
    likely than `judge_insist` to answer, a first "not found" is the answer (a near miss is refused)."""
    question = "宜昌市在全省建立了多少家療休養基地？"
    replies = ("原文：无\n答案：資料中沒有提到。", "原文：全省建立了15家疗休养基地\n答案：宜昌市在全省建立了15家疗休养基地[1]。")
    bot, model = scripted(assistant, *replies)
    judged = bot.ask(question).trace.judged
    assert judged >= bot.config.judge_insist and len(model.prompts) == 2  # sure enough: asked again
    bot, model = scripted(assistant, *replies, judge_insist=judged + 0.01)
    answer = bot.ask(question)
    assert answer.refused and not answer.trace.retried and len(model.prompts) == 1
    assert answer.trace.refusal == Refusal("reader", "the model quoted nothing")


def test_an_invented_quote_is_refused_and_never_shown(assistant):
    bot, _ = scripted(assistant, "原文：宜昌市建成了99家疗休养基地\n答案：99家[1]", "原文：宜昌市建成了99家疗休养基地\n答案：99家[1]")
    items = list(bot.ask_stream("宜昌市在全省建立了多少家疗休养基地？"))
    assert len(items) == 1 and items[0].refused and items[0].trace.refusal.kind == "reader" and "in no passage" in items[0].trace.why


def test_an_answer_under_a_quote_of_its_own_is_shown_only_once_a_sentence_holds_it(assistant):
    """A 1.5B model often writes its answer (or the question) on the quote line. That quote is no
    support, but the answer is: it is shown, whole and after its checks, citing the sentence that holds it."""
    bot, model = scripted(assistant, "原文：疗休养基地一共有十五家\n答案：宜昌市在全省建立了15家疗休养基地[1]。")
    items = list(bot.ask_stream("宜昌市在全省建立了多少家疗休养基地？"))
    assert len(items) == 2 and "15家" in items[0] and len(model.prompts) == 1  # one piece: nothing before the checks
    final = items[-1]
    assert not final.refused and "15家" in final.citations[0].quote and "十五" not in final.citations[0].quote


def test_an_answer_saying_more_than_its_quote_is_refused(assistant):
    bot, _ = scripted(assistant, "原文：无", "原文：全省建立了15家疗休养基地\n答案：宜昌市在全省建立了99家疗休养基地[1]。")
    items = list(bot.ask_stream("宜昌市在全省建立了多少家疗休养基地？"))
    assert len(items) == 1 and items[0].refused and items[0].trace.retried


def test_a_number_the_quote_does_not_hold_ends_the_answer_there(assistant):
    tail = "，涵盖酒店、自然景区、红色参观地、特色乡村等各类疗休养资源" * 3
    first = f"原文：全省建立了15家疗休养基地\n答案：宜昌市在全省建立了99家疗休养基地{tail}[1]。"
    bot, model = scripted(assistant, first, "原文：全省建立了15家疗休养基地\n答案：宜昌市在全省建立了15家疗休养基地[1]。")
    items = list(bot.ask_stream("宜昌市在全省建立了多少家疗休养基地？"))
    final = items[-1]
    assert "15家" in final.text and "99" not in final.text and not final.refused and final.trace.retried
    assert model.served[0] == first.index("99家") + 3  # stopped as the number was written whole


def test_a_quote_from_another_topic_is_never_shown(assistant):
    """The follow-up asks about members; a quote about rest homes does not carry the question."""
    history = [("宜昌市在全省建立了多少家疗休养基地？", "宜昌市在全省建立了15家疗休养基地[1]。")]
    reply = "原文：全省建立了15家疗休养基地\n答案：新增会员15人[1]。"
    bot, model = scripted(assistant, reply, reply)
    items = list(bot.ask_stream("新增会员多少人？", history=history))
    assert len(items) == 1 and items[0].refused and not items[0].trace.retried
    assert len(model.prompts) <= 1  # refused before the model, or after its quote; asked again, a model quotes the same sentence


_OXYGEN = "青海省总工会先期安排了多少专项资金为高海拔地区配备制氧机？"


def _off_topic(assistant, question: str) -> tuple[list[Passage], str]:
    """The retrieved passages, and a sentence of them the judge rejects as answering the question."""
    passages = assistant.retrieve(question, k=assistant.config.k)
    verdicts = Verdicts(assistant.judge, question, [], passages, assistant.config.judge_threshold)
    return passages, next(
        passage.text[a:b] for number, passage in enumerate(passages) for a, b in split_sentences(passage.text)
        if isinstance(judged_problem(support_at(passages, number, a, b), verdicts), OffTopic)
    )


def test_an_answer_beside_an_off_topic_quote_rests_on_the_sentence_that_holds_it(assistant):
    """A 1.5B model often quotes a sentence near the one it answers from: the answer is shown,
    citing the sentence that holds it and carries the question, and the model is not asked again."""
    question = _OXYGEN
    passages, off_topic = _off_topic(assistant, question)
    bot, model = scripted(assistant, f"原文：{off_topic}\n答案：青海省总工会先期安排了50万元专项资金[1]。")
    items = list(bot.ask_stream(question))
    final = items[-1]
    assert not final.refused and "50万元" in final.citations[0].quote and off_topic not in final.citations[0].quote
    assert len(model.prompts) == 1 and "".join(items[:-1]).count("50万") == 1  # shown once, after its checks


def test_a_model_that_quoted_a_rejected_sentence_is_pointed_at_the_sentences_the_judge_accepts(assistant):
    """Its answer (7万元) is in no sentence the judge accepts: it is asked again in a turn naming the
    sentences the judge accepts; its second answer passes the checks, and only that one is shown."""
    question = _OXYGEN
    passages, off_topic = _off_topic(assistant, question)
    answering = next(p.text[a:b] for p in passages for a, b in split_sentences(p.text) if "50万元" in p.text[a:b])
    bot, model = scripted(assistant, f"原文：{off_topic}\n答案：青海省总工会先期安排了7万元专项资金[1]。",
                          f"原文：{answering}\n答案：青海省总工会先期安排了50万元专项资金[1]。")
    items = list(bot.ask_stream(question))
    final = items[-1]
    assert not final.refused and final.trace.retried and "50万元" in final.citations[0].quote
    assert len(model.prompts) == 2 and "没有回答" in model.prompts[1]
    named = to_search_form(model.prompts[1].split("没有回答")[1].split("问题：")[0])
    ranked = rank(question, passages, bot.retriever.index, bot.embedder, bot.config, bot.judge)
    accepted = Verdicts(bot.judge, question, ranked, passages, bot.config.judge_threshold).answering()[:2]
    # pointed at the sentences the judge accepts, and not at the one it rejected
    assert accepted and all(to_search_form(e.text) in named for e in accepted) and to_search_form(off_topic) not in named
    assert "7万" not in "".join(i for i in items if isinstance(i, str))  # the rejected answer was never streamed


def test_a_quote_sharing_only_common_words_with_a_question_the_archive_never_covers_is_refused(assistant):
    """No article mentions astronauts or a space station: a sentence that shares only 工作, 时常 and 情况
    with the question is about something else, though it holds every question word the retrieved passages use."""
    question = "宇航员在太空站工作时常有什么情况？"
    passages = assistant.retrieve(question, k=assistant.config.k)
    assert not any(word in p.text for p in passages for word in ("宇航", "太空"))
    sentence = next(s for p in passages for s in re.findall(r"[^。！？]*时常[^。！？]*情况[^。！？]*。", p.text))
    reply = f"原文：{sentence}\n答案：{sentence}[1]"
    bot, _ = scripted(assistant, reply, reply)
    items = list(bot.ask_stream(question))
    assert len(items) == 1 and items[0].refused and "judge" in items[0].trace.why


def test_an_answer_starting_like_a_refusal_streams_unchanged(assistant):
    bot, model = scripted(assistant, "原文：全省建立了15家疗休养基地\n答案：没有，宜昌市建立的是15家疗休养基地[1]。")
    answer = bot.ask("宜昌市建立了20家疗休养基地吗？")
    assert not answer.refused and answer.text.startswith("没有，") and len(model.prompts) == 1


def test_the_citation_carries_the_quoted_span_in_file_offsets(assistant):
    bot, _ = scripted(assistant, "原文：全省建立了15家疗休养基地\n答案：宜昌市在全省建立了15家疗休养基地[1]。")
    answer = bot.ask("宜昌市在全省建立了多少家疗休养基地？")
    cited = answer.citations[0]
    assert cited.quote and cited.quote in cited.text
    raw = decode(assistant.config.seeds_dir / cited.source)
    # the span is what the article says (the model's copy added a 了), at the file's own offsets
    assert normalised(raw[cited.quote_start : cited.quote_end])[0] == normalised(cited.quote)[0] == "全省建立15家疗休养基地"


def test_once_the_quote_is_placed_the_rest_of_the_sentence_is_copied_for_the_model(assistant):
    """Writing a whole sentence costs seconds; once the copy is found in the evidence, the rest of
    that sentence is given to the model (read in one batch) and it goes on from the answer label."""
    sentence = "宜昌市总出台劳模(职工)疗休养基地管理办法(试行),并在全省建立15家疗休养基地,涵盖酒店、自然景区、红色参观地、特色乡村等各类疗休养资源。"
    bot, model = scripted(assistant, f"原文：{sentence}\n答案：15家[1]", "15家[1]", continues=True)
    answer = bot.ask("宜昌市在全省建立了多少家疗休养基地？")
    assert not answer.refused and answer.text.startswith("15家")
    assert model.prefixes[0] == "" and model.prefixes[1] == f"原文：{sentence}\n答案："
    assert model.served[0] < len(sentence) // 2 and model.closed == 2  # the copy stopped early, its stream closed
    cited = answer.citations[0]
    assert normalised(cited.quote)[0] == normalised(sentence)[0]  # the whole sentence, not the copied part


def test_a_model_that_cannot_continue_copies_its_whole_quote(assistant):
    sentence = "宜昌市总出台劳模(职工)疗休养基地管理办法(试行),并在全省建立15家疗休养基地"
    bot, model = scripted(assistant, f"原文：{sentence}\n答案：15家[1]")
    answer = bot.ask("宜昌市在全省建立了多少家疗休养基地？")
    assert not answer.refused and model.prefixes == [""] and model.served[0] == len(f"原文：{sentence}\n答案：15家[1]")


# ---- the real model on the cases that used to fail -----------------------------------------

@pytest.mark.parametrize("question, expected", [
    ("乌鲁木齐新业态总工会成立当天有多少名快递员加入工会？", "3941"),
    ("是谁说实训基地是专门为参与“求学圆梦”行动的学员而建的？", "熊建军"),
])
def test_real_model_reads_what_it_used_to_miss(default, question, expected):
    answer = default.ask(question)
    assert not answer.refused and expected in answer.text, answer.trace.why or answer.text
    assert answer.citations[0].quote


def test_real_model_answers_english_in_a_sentence(default):
    answer = default.ask("How many outdoor worker rest stations has the Jinan Federation of Trade Unions built?")
    body = re.sub(r"\[\d+\]", "", answer.text)
    assert "526" in body and len(re.findall(r"[A-Za-z]+", body)) >= 4, answer.text
    assert re.search(r"\[1\]", answer.text)


def test_real_model_follow_up_keeps_the_earlier_topic(default):
    first = default.ask("宜昌市在全省建立了多少家疗休养基地？")
    follow = default.ask("新增会员多少人？", history=[("宜昌市在全省建立了多少家疗休养基地？", first.text)])
    assert follow.refused or "宜昌" in follow.text, follow.text


def test_stream_then_final_answer(default):
    items = list(default.ask_stream("樂陵市總工會2022年成立了多少個基層工會？"))
    assert isinstance(items[-1], Answer) and not items[-1].refused
    assert all(isinstance(p, str) for p in items[:-1]) and "15" in "".join(items[:-1])


# ---- the judge decides ------------------------------------------------------------------------

def test_a_question_only_same_event_sentences_touch_is_refused_before_the_model_is_asked(assistant):
    """seeds_dev d14: the seeds report rest-home subsidies in Yichang, not Shanghai in 2021. No
    sentence is judged to answer it, so the model, which would have answered from a neighbour, is never asked."""
    bot, model = scripted(assistant, "原文：宜昌市总安排100万元对市直单位进行疗休养专项补助\n答案：100万元[1]")
    answer = bot.ask("上海市总工会2021年为多少名职工发放了疗休养补贴？")
    assert answer.refused and model.prompts == []
    # the passages name no 上海市总工会; were they to, no sentence would be judged to answer it
    assert answer.trace.judged < assistant.config.judge_threshold


def test_a_quote_the_judge_rejects_is_no_support(assistant):
    """The model quotes a same-event sentence that does not state what is asked: its answer is
    refused, though the sentence holds the number it gives."""
    question = "宜昌市在全省建立了多少家疗休养基地？"
    reply = "原文：宜昌市各级工会已组织2000余名抗疫一线职工代表开展疗休养活动\n答案：2000余名[1]"
    bot, model = scripted(assistant, reply, reply)
    items = list(bot.ask_stream(question))
    assert len(items) == 1 and items[0].refused and "judge" in items[0].trace.why


def test_an_answer_that_repeats_the_instructions_is_refused_as_a_leak(assistant):
    """An English answer is checked by its numbers only, so a clause of the prompt can ride along;
    the reader refuses it, and says it was a leak."""
    bot, _ = scripted(assistant, "原文：济南市总工会目前已建设户外劳动者驿站526家\n答案：Jinan has built 526 stations[1]. 只根据用户给出的资料回答问题。")
    answer = bot.ask("How many outdoor worker rest stations has the Jinan Federation of Trade Unions built?")
    assert answer.refused and answer.trace.refusal.kind == "leak" and "只根据" not in answer.text
