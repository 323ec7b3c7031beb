from __future__ import annotations

import os
import shutil

import pytest

from conftest import sharing
from rag import Assistant
from rag.assistant import QuestionError
from rag.types import Refusal


def test_assistant_builds_missing_index_on_first_question(tmp_path, seed_files, embedder):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(seed_files[3], seeds)
    bot = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index", embedder=embedder)
    passages = bot.retrieve("福州工匠學院為就讀職工提供多少助學金？", k=2)
    assert (tmp_path / "index" / "CURRENT").exists()
    assert "1000元" in passages[0].text


def test_assistant_picks_up_new_seed_files(tmp_path, seed_files, embedder):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(seed_files[3], seeds)
    bot = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index", embedder=embedder)
    bot.index(progress=False)
    shutil.copy(seed_files[4], seeds)
    fresh = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index", embedder=embedder)
    assert any(p.source == seed_files[4].name for p in fresh.retrieve("乐陵市工人文化宫志愿服务时长", k=3))


def test_a_change_that_keeps_size_and_time_is_noticed(tmp_path, seed_files, embedder):
    """The probe: a file rewritten with its size and modification time restored was never re-read."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    page = seeds / "page.txt"
    page.write_text("测试县工会简报\n\n本报讯 测试县工会今年新建职工书屋18家。\n", encoding="utf-8")
    bot = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index", embedder=embedder)
    bot.index(progress=False)
    before = page.stat()
    page.write_text("测试县工会简报\n\n本报讯 测试县工会今年新建职工驿站27个。\n", encoding="utf-8")  # same length
    os.utime(page, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert page.stat().st_size == before.st_size and page.stat().st_mtime_ns == before.st_mtime_ns
    assert "职工驿站27个" in bot.retrieve("测试县工会今年新建了什么", k=1)[0].text


@pytest.mark.parametrize("question", ["", "   \n\t", "\x00\x01"])
def test_empty_questions_are_refused_clearly(assistant, question):
    with pytest.raises(QuestionError, match="empty"):
        assistant.retrieve(question)


def test_huge_question_is_refused_with_the_limit(assistant):
    with pytest.raises(QuestionError, match="limit is 2000"):
        assistant.retrieve("工会" * 10_000)


def test_control_characters_are_ignored(assistant):
    clean = assistant.retrieve("宜昌市疗休养基地", k=1)
    noisy = assistant.retrieve("宜昌市\x07疗休养\x1b基地", k=1)
    assert clean[0].text == noisy[0].text


def test_unknown_setting_is_an_error():
    with pytest.raises(TypeError, match="unknown setting"):
        Assistant(no_such_setting=1)


def test_settings_given_with_a_question_hold_for_that_question_only(assistant):
    """Users of one Assistant (the app's) choose their model and passages per question: neither
    changes the Assistant's settings, nor loads its configured model, for the others."""
    bot = sharing(assistant)
    question = "宜昌市在全省建立了多少家疗休养基地？"
    wide = bot.ask(question, llm_backend="extractive")
    narrow = bot.ask(question, llm_backend="extractive", k=1)
    assert len(narrow.trace.passages) == 1 < len(wide.trace.passages) == bot.config.k
    assert "15家" in wide.text and bot.config.llm_backend == "llama" and not bot._generator_loaded
    with pytest.raises(TypeError, match="not a setting of one question"):
        bot.ask(question, store="milvus")  # the index's, shared by every question
    with pytest.raises(TypeError, match="unknown setting"):
        bot.ask(question, no_such_setting=1)


def test_article_text_follows_edits_of_the_seed_file(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    path = seeds / "a.txt"
    path.write_text("第一篇标题\n\n本报讯 工人文化宫今年开放了十二个活动室。\n", encoding="utf-8")
    bot = Assistant(seeds_dir=seeds, index_dir=tmp_path / "index")
    assert "十二个" in bot.article_text("a.txt", 0)[1]
    path.write_text("第一篇标题\n\n本报讯 工人文化宫今年开放了二十个活动室，比去年多八个。\n", encoding="utf-8")
    assert "二十个" in bot.article_text("a.txt", 0)[1]


def test_the_trace_says_which_stage_refused_and_what_an_answer_rested_on(assistant):
    bot = sharing(assistant, llm_backend="extractive")
    refused = bot.ask("宇航员在太空站工作时常有什么情况？")  # no article covers it: refused before any model
    assert refused.refused and refused.trace.refusal.kind == "unanswered" and refused.trace.passages
    assert refused.trace.judged < bot.config.judge_threshold and "judge" in refused.trace.refusal.detail
    assert refused.meta["refusal_reason"] == refused.trace.refusal.detail  # the dict answers carried before Trace
    assert 0 < refused.trace.ttft <= refused.trace.seconds
    answered = bot.ask("乐陵市总工会2022年成立了多少个基层工会？")
    assert not answered.refused and answered.trace.refusal is None and answered.trace.why == ""
    assert answered.trace.evidence and answered.trace.judged >= bot.config.judge_threshold
    with pytest.raises(ValueError, match="unanswered"):
        Refusal("no reason", "")
