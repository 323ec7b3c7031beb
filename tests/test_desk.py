"""The journal of conversations and feedback (SQLite on disk) and the question sets made from it."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from rag.desk import Journal, JournalError, open_journal
from rag.desk.cases import case, export, facts
from rag.evaluate import grade, load_items
from rag.types import Answer, Passage, Trace


def answer(text: str, refused: bool = False, source: str = "004_27a72bc7b7d6e54f.txt") -> Answer:
    cited = [] if refused else [Passage("共成立基层工会15个。", source, "乐陵工会", 1.0, 0, 10, quote="共成立基层工会15个", quote_start=2, quote_end=11)]
    return Answer(text, cited, refused=refused, trace=Trace(ttft=0.5, seconds=1.5))


def test_conversations_survive_a_reopen_and_belong_to_their_owner(tmp_path):
    path = tmp_path / "desk.sqlite3"
    journal = Journal(path)
    mine = journal.start("ann")
    journal.record(mine, "乐陵市总工会2022年成立了多少个基层工会？", answer("成立了15个基层工会。[1]"), "qwen.gguf", "2026-11-30T00:00:00Z")
    journal.record(mine, "那青海呢？", answer("文章中没有找到。", refused=True), "qwen.gguf", "2026-11-30T00:00:00Z")
    theirs = journal.start("bob")
    journal.close()

    reopened = Journal(path)
    listed = reopened.conversations("ann")
    assert [c.id for c in listed] == [mine] and listed[0].turns == 2
    assert listed[0].title == "乐陵市总工会2022年成立了多少个基层工会？"  # named after its first question
    turns = reopened.turns(mine)
    assert [t.question for t in turns] == ["乐陵市总工会2022年成立了多少个基层工会？", "那青海呢？"]
    assert turns[0].citations[0]["source"] == "004_27a72bc7b7d6e54f.txt" and turns[0].citations[0]["start"] == 2
    assert turns[1].refused and turns[0].model == "qwen.gguf" and turns[0].ttft == 0.5
    assert [c.id for c in reopened.conversations("bob")] == [theirs]

    assert not reopened.rename(mine, "别人改名", "bob") and reopened.rename(mine, "工会统计", "ann")
    assert reopened.conversation(mine).title == "工会统计"
    assert not reopened.delete(mine, "bob") and reopened.delete(mine, "ann")
    assert reopened.conversations("ann") == [] and reopened.turns(mine) == []  # its turns went with it


def test_feedback_is_kept_with_the_answer_and_counted_by_day(tmp_path):
    journal = Journal(tmp_path / "desk.sqlite3")
    conversation = journal.start("local")
    right = journal.record(conversation, "q1", answer("15个[1]"), "m", "g")
    wrong = journal.record(conversation, "q2", answer("20个[1]"), "m", "g")
    journal.record(conversation, "q3", answer("30个[1]"), "m", "g")
    assert journal.rate(right, True) and journal.rate(wrong, False, "应为25个")
    assert journal.annotate(right, "准确")
    assert not journal.rate("no-such-turn", True)
    marked = {t.id: t for t in journal.rated()}
    assert marked[right].rating == 1 and marked[right].note == "准确"
    assert marked[wrong].rating == -1 and marked[wrong].note == "应为25个"
    [(day, answers, ups, downs)] = journal.feedback_by_day()
    assert (answers, ups, downs) == (3, 1, 1) and len(day) == 10


def test_a_file_that_is_not_a_database_is_one_clear_line(tmp_path):
    path = tmp_path / "desk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="not a readable conversation file.*move it aside"):
        Journal(path)
    journal, why = open_journal(path)
    assert journal is None and str(path) in why
    assert path.read_bytes() == b"this is not sqlite" * 100  # nothing of the user's is overwritten


def test_a_locked_file_is_one_clear_line_and_keeps_what_was_stored(tmp_path):
    path = tmp_path / "desk.sqlite3"
    journal = Journal(path, timeout=0.2)
    conversation = journal.start("local")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the file
    try:
        with pytest.raises(JournalError, match="locked by another program"):
            journal.record(conversation, "q", answer("15个[1]"), "m", "g")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert journal.turns(conversation) == []
    journal.record(conversation, "q", answer("15个[1]"), "m", "g")  # usable again once released
    assert len(journal.turns(conversation)) == 1


def test_a_process_killed_mid_write_loses_only_that_write(tmp_path):
    path = tmp_path / "desk.sqlite3"
    script = textwrap.dedent(f"""
        import os, signal
        from rag.desk import Journal
        from rag.types import Answer
        journal = Journal({str(path)!r})
        conversation = journal.start("local", id="c1")
        journal.record(conversation, "kept", Answer("15个", []), "m", "g")
        db = journal._db
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE turns SET answer = 'half-written'")
        db.execute("INSERT INTO turns (id, conversation, position, question, answer, refused, citations, model, generation, ttft, seconds, created) "
                   "VALUES ('t2', 'c1', 1, 'lost', 'x', 0, '[]', 'm', 'g', 0, 0, 0)")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == -9, run.stderr
    turns = Journal(path).turns("c1")
    assert [(t.question, t.answer) for t in turns] == [("kept", "15个")]


def test_facts_are_the_numbers_an_answer_gives_not_those_of_the_question():
    assert facts("乐陵市总工会2022年成立了15个基层工会。[1]", "乐陵市总工会2022年成立了多少个基层工会？") == ["15"]
    assert facts("The union built 300 rest stations.[1]") == ["300"]
    assert facts("2021年新建了1个驿站。[1]", "2021年新建了几个驿站？") == ["1"]  # 1 is a number of its own, not part of 2021


def test_feedback_exported_as_cases_that_rag_eval_grades(tmp_path):
    journal = Journal(tmp_path / "desk.sqlite3")
    conversation = journal.start("local")
    question = "乐陵市总工会2022年成立了多少个基层工会？"
    right = journal.record(conversation, question, answer("成立了15个基层工会。[1]"), "m", "g")
    wrong = journal.record(conversation, "宜昌市建了多少家疗休养基地？", answer("建了150家。[1]"), "m", "g")
    vague = journal.record(conversation, "淄博市总工会建成了什么？", answer("建成了驿站300家。[1]"), "m", "g")
    journal.record(conversation, "unmarked", answer("1[1]"), "m", "g")
    journal.rate(right, True)
    journal.rate(wrong, False, "应该是15家")
    journal.rate(vague, False, "答非所问")
    out = tmp_path / "feedback.jsonl"
    assert export(journal.rated(), out) == 3
    items = {i["feedback"] + i["question"][:2]: i for i in load_items(out)}
    assert {i["id"] for i in items.values()} == {f"feedback-{t}" for t in (right, wrong, vague)}

    regression = items["right乐陵"]
    assert regression["sources"] == ["004_27a72bc7b7d6e54f.txt"] and regression["answerable"] is True
    assert grade(regression, answer("共15个。[1]")).correct
    assert not grade(regression, answer("共150个。[1]")).correct  # 15 is not matched inside 150
    assert not grade(regression, answer("没有找到", refused=True)).correct

    to_fix = items["wrong宜昌"]
    assert to_fix["answerable"] is True and to_fix["note"] == "应该是15家"
    assert not grade(to_fix, answer("建了150家。[1]")).correct  # the answer marked wrong
    assert grade(to_fix, answer("建了15家。[1]")).correct  # the note's answer

    unknown = items["wrong淄博"]
    assert unknown["answerable"] is None
    assert not grade(unknown, answer("驿站300家。[1]")).correct
    assert grade(unknown, answer("没有找到", refused=True)).correct
    assert case(journal.turn(right))["model"] == "m"
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["question"]


def test_datelines_and_bylines_are_read_from_the_text():
    from rag.desk.articles import dateline, reporter

    assert dateline("本报讯 2023年5月12日，工会召开大会") == "2023-05-12"
    assert dateline("2023-13-01 不是日期；2022.4.3 是") == "2022-04-03"
    assert reporter("标题\n本报记者 李润钊\n正文") == "李润钊"
    assert reporter("本报讯(通讯员张璐 记者李玉波)近日") == "李玉波"  # the reporter, not the correspondent
    assert reporter("本报通讯员 沈岳摄") == "" and dateline("今年以来") == ""


def test_the_catalogue_filters_by_folder_and_text_in_either_script():
    from rag.desk.articles import Entry, matching

    entries = [Entry("2024/07/page2.txt", 0, "乐陵市总工会开展活动", 0, 3, reporter="李润钊"),
               Entry("2024/07/sub/page3.pdf", 1, "济南驿站", 2, 4), Entry("2024/070/x.txt", 0, "其他", 0, 1),
               Entry("top.txt", 0, "宜昌疗休养基地", 0, 2, date="2023-05-12")]
    assert [e.source for e in matching(entries, "2024/07")] == ["2024/07/page2.txt", "2024/07/sub/page3.pdf"]
    assert [e.source for e in matching(entries, "", "樂陵")] == ["2024/07/page2.txt"]
    assert [e.source for e in matching(entries, "", "2023-05")] == ["top.txt"]
    assert matching(entries, "2031") == [] and entries[1].folder == "2024/07/sub" and entries[1].format == "pdf"


def test_the_trash_keeps_paths_restores_and_never_overwrites(tmp_path):
    from rag.desk.articles import restore, to_trash, trashed

    seeds = tmp_path / "seeds"
    (seeds / "2024").mkdir(parents=True)
    (seeds / "2024" / "a.txt").write_text("原文", encoding="utf-8")
    place = to_trash(seeds, "2024/a.txt")
    assert not (seeds / "2024" / "a.txt").exists() and place.read_text(encoding="utf-8") == "原文"
    [(kept, source)] = trashed(seeds)
    assert source == "2024/a.txt" and kept.endswith("/2024/a.txt")
    (seeds / "2024" / "a.txt").write_text("新的同名文件", encoding="utf-8")
    with pytest.raises(FileExistsError, match="nothing was overwritten"):
        restore(seeds, kept)
    assert (seeds / "2024" / "a.txt").read_text(encoding="utf-8") == "新的同名文件"
    (seeds / "2024" / "a.txt").unlink()
    assert restore(seeds, kept) == "2024/a.txt" and (seeds / "2024" / "a.txt").read_text(encoding="utf-8") == "原文"
    for outside in ("../elsewhere.txt", "/etc/passwd"):
        with pytest.raises(ValueError, match="not a path inside"):
            to_trash(seeds, outside)
    with pytest.raises(FileNotFoundError):
        to_trash(seeds, "2024/missing.txt")


def test_the_printed_page_has_the_quoted_span_highlighted_across_a_line_break(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from formats import write_pdf

    from rag.desk.pages import HIGHLIGHT, cached_png, render

    pdf = tmp_path / "版面.pdf"
    write_pdf(["测试县总工会建成一批驿站", "本报讯 测试县总工会今年建成户外劳动者驿站48个，覆盖全部乡镇，为快递员、外卖骑手提供歇脚、饮水、充电等服务。"], pdf)
    quote = "驿站48个，覆盖全部乡镇，为快递员、外卖骑手提供歇脚"  # wraps onto the next line of its column
    page = render(pdf, 1, quote)
    assert len(page.boxes) == len(quote)
    tops = sorted(top for _, top, _, _ in page.boxes)
    assert sum(b - a > 8 for a, b in zip(tops, tops[1:])) == 1  # two lines of print
    image = page.image
    painted = total = 0
    for left, top, right, bottom in page.boxes:
        inside = [image.getpixel((x, y)) for x in range(left, right) for y in range(top, bottom)]
        assert sum(p == HIGHLIGHT for p in inside) > len(inside) / 6  # the paper under each character is highlighted
        painted, total = painted + sum(p == HIGHLIGHT for p in inside), total + len(inside)
    assert painted > 0.4 * total  # glyph boxes are tight: the ink covers about half
    width, height = image.size
    assert image.getpixel((width - 5, height - 5)) == (255, 255, 255)  # nothing else is
    assert render(pdf, 1, "这句话不在这一页上").boxes == []
    with pytest.raises(ValueError, match="has 1 pages"):
        render(pdf, 3, quote)
    png = cached_png(pdf, 1, quote, tmp_path / "pages")
    assert png.exists() and cached_png(pdf, 1, quote, tmp_path / "pages") == png
