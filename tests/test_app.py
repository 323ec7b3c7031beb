"""The chat app, driven as a client would (gradio_client) and as a person would (headless Chromium)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_of, free_port, start_process

from rag.evaluate import load_items
from rag.answering.history import message_text

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def app_url(assistant, tmp_path_factory):
    """`python app.py` on a free loopback port, over the test copy of the seeds and its index."""
    port = free_port()
    seeds, index = copy_of(assistant, tmp_path_factory.mktemp("app"))
    url = f"http://127.0.0.1:{port}/"
    proc = start_process([str(ROOT / "app.py"), "--port", str(port), "--seeds", str(seeds), "--index", str(index)], url, seeds.parent / "app.log")
    yield url, seeds
    proc.terminate()
    proc.wait(20)


def test_client_streams_an_answer_with_sources(app_url):
    from gradio_client import Client

    url, _ = app_url
    client = Client(url, verbose=False)
    job = client.submit("宜昌市在全省建立了多少家疗休养基地？", [], "Qwen2.5 1.5B (best)", 5, api_name="/respond")
    updates = list(job)
    chat, sources, box = job.result()
    assert len(updates) >= 3  # streamed, not one final message
    assert "15" in message_text(chat[-1]["content"]) and "[1]" in message_text(chat[-1]["content"])
    assert "000_1d8e9ba56c338e16.txt" in sources and "<mark>" in sources and "Whole article" in sources
    assert box == ""


def test_client_refusal_and_bad_upload(app_url, tmp_path):
    from gradio_client import Client, handle_file

    url, seeds = app_url
    client = Client(url, verbose=False)
    chat, sources, _ = client.predict("广州市总工会为外卖骑手建了多少个驿站？", [], "Qwen2.5 1.5B (best)", 5, api_name="/respond")
    assert "没有找到" in message_text(chat[-1]["content"]) and "do not contain" in sources

    bad = tmp_path / "broken.txt"
    bad.write_bytes(bytes(range(0x80, 0x100)) * 10)
    good = tmp_path / "999_new.txt"
    good.write_text("测试市总工会开展帮扶活动\n\n本报讯 测试市总工会今年为职工发放帮扶金320万元。\n", encoding="utf-8")
    clash = tmp_path / "004_27a72bc7b7d6e54f.txt"  # same name as a seed, other content
    clash.write_text("同名测试\n\n本报讯 同名文件不应覆盖原文。\n", encoding="utf-8")
    original = (seeds / clash.name).read_bytes()
    files = [handle_file(str(bad)), handle_file(str(good)), handle_file(str(clash))]
    status = client.predict(files, False, api_name="/add_articles")
    assert "Refused: broken.txt" in status and "999_new.txt" in status
    assert (seeds / "999_new.txt").exists() and not (seeds / "broken.txt").exists()
    assert (seeds / clash.name).read_bytes() == original  # the seed survives the upload
    assert (seeds / "004_27a72bc7b7d6e54f (2).txt").read_bytes() == clash.read_bytes()
    assert "004_27a72bc7b7d6e54f (2).txt" in status
    assert (seeds / "999_new.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()
    chat, sources, _ = client.predict("测试市总工会今年为职工发放了多少帮扶金？", [], "Extractive (no model)", 5, api_name="/respond")
    assert "320" in message_text(chat[-1]["content"]) and "999_new.txt" in sources


def assert_page_highlighted(url: str, sources: str) -> None:
    """The PDF source's page, as the browser fetches it, has the highlight painted on it."""
    import io
    import re

    import httpx
    from PIL import Image

    from rag.desk.pages import HIGHLIGHT

    found = re.search(r"<img src='(/gradio_api/file=[^']+\.png)'", sources)
    assert found, "no page image beside the PDF source"
    reply = httpx.get(url.rstrip("/") + found.group(1))
    assert reply.status_code == 200
    image = Image.open(io.BytesIO(reply.content)).convert("RGB")
    assert (np.asarray(image) == HIGHLIGHT).all(axis=2).sum() > 500


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_two_users_at_once_both_get_their_answers(app_url):
    from gradio_client import Client

    url, _ = app_url
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    ja = a.submit("湖湘劳模工匠馆的展示面积有多大？", [], "Qwen2.5 1.5B (best)", 5, api_name="/respond")
    jb = b.submit("南京市总工会联合多少个部门出台职业技能提升行动三年实施方案？", [], "Qwen2.5 1.5B (best)", 5, api_name="/respond")
    assert "1000" in message_text(ja.result()[0][-1]["content"])
    assert "22" in message_text(jb.result()[0][-1]["content"])


def test_browser_asks_and_sees_the_sources(app_url):
    from playwright.sync_api import sync_playwright

    url, _ = app_url
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "install Debian's chromium (make test does)"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url)
        page.locator("#question textarea").fill("樂陵市總工會2022年成立了多少個基層工會？")
        page.locator("#ask").click()
        page.locator("#sources .source").first.wait_for(timeout=120_000)
        page.wait_for_timeout(500)
        answer = page.locator("#chat").inner_text()
        sources = page.locator("#sources").inner_text()
        assert_chinese_renders(page)
        page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
        browser.close()
    assert "15" in answer and "個" in answer
    assert "004_27a72bc7b7d6e54f.txt" in sources
    offsite = [r for r in requests if not r.startswith(url.rstrip("/")) and not r.startswith(("data:", "blob:"))]
    assert offsite == []  # fully offline: no CDN, fonts or analytics


def test_upload_of_every_format_and_a_folder_that_changes_under_the_app(app_url, tmp_path):
    from formats import write_docx, write_pdf
    from gradio_client import Client, handle_file

    url, seeds = app_url
    client = Client(url, verbose=False)
    pdf = tmp_path / "测试版面.pdf"
    write_pdf(["测试县总工会建成一批驿站", "本报讯 测试县总工会今年建成户外劳动者驿站48个，覆盖全部乡镇。"], pdf)
    memo = tmp_path / "memo.docx"
    write_docx(["测试县总工会慰问环卫工人", "本报讯 测试县总工会向环卫工人发放防暑降温物资1200份。"], memo)
    rtf = tmp_path / "notes.rtf"
    rtf.write_text("{\\rtf1 测试}", encoding="utf-8")
    status = client.predict([handle_file(str(pdf)), handle_file(str(memo)), handle_file(str(rtf))], False, api_name="/add_articles")
    assert "Refused: notes.rtf: not a format" in status and (seeds / "测试版面.pdf").exists() and (seeds / "memo.docx").exists()
    chat, sources, _ = client.predict("测试县总工会今年建成了多少个户外劳动者驿站？", [], "Extractive (no model)", 5, api_name="/respond")
    assert "48" in message_text(chat[-1]["content"]) and "测试版面.pdf" in sources and "p. 1" in sources
    assert_page_highlighted(url, sources)

    # a file dropped into a subfolder by hand is noticed by the next question, without a button, and
    # indexed in the background: a question soon after finds it
    (seeds / "2024" / "07").mkdir(parents=True)
    (seeds / "2024" / "07" / "page2.txt").write_text("测试镇工会开展义诊\n\n本报讯 测试镇工会组织医生为职工义诊，共服务职工736人次。\n", encoding="utf-8")
    deadline = time.monotonic() + 120
    while True:
        chat, sources, _ = client.predict("测试镇工会义诊共服务职工多少人次？", [], "Extractive (no model)", 5, api_name="/respond")
        if "2024/07/page2.txt" in sources or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "736" in message_text(chat[-1]["content"]) and "2024/07/page2.txt" in sources
    (seeds / "memo.docx").unlink()
    assert "1 removed" in client.predict(api_name="/rescan")
    chat, sources, _ = client.predict("测试县总工会发放了多少份防暑降温物资？", [], "Extractive (no model)", 5, api_name="/respond")
    assert "memo.docx" not in sources


def test_a_password_guards_the_app_when_asked(assistant, tmp_path):
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_process([str(ROOT / "app.py"), "--port", str(port), "--seeds", str(assistant.config.seeds_dir),
                          "--index", str(assistant.config.index_dir), "--api-key", "s3cret"],
                         url, tmp_path / "app.log", {"RAG_LLM_BACKEND": "extractive"})
    try:
        with pytest.raises(Exception):
            Client(url, verbose=False)  # the page is behind the login
        client = Client(url, auth=("anyone", "s3cret"), verbose=False)
        chat, sources, _ = client.predict("宜昌市在全省建立了多少家疗休养基地？", [], "Extractive (no model)", 5, api_name="/respond")
        assert "15" in message_text(chat[-1]["content"])
        with pytest.raises(Exception):
            Client(url, auth=("anyone", "wrong"), verbose=False)
    finally:
        proc.terminate()
        proc.wait(20)


def test_wrong_passwords_slow_the_next_login_down():
    from rag.chat import LoginThrottle

    waits = []
    check = LoginThrottle("s3cret", most=4.0, sleep=waits.append)
    assert [check("anyone", guess) for guess in ("a", "b", "c", "d", "e")] == [False] * 5
    assert waits == [1.0, 2.0, 4.0, 4.0]  # the first guess waits for nothing; each wrong one doubles the wait
    assert check("anyone", "s3cret") and check("anyone", "s3cret") and waits == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_batch_with_a_file_a_loader_trips_on_keeps_and_indexes_the_others(app_url, tmp_path):
    """The probe: one bad file in a batch gave a generic error, and the good file was copied but not indexed."""
    import zipfile

    from formats import write_docx
    from gradio_client import Client, handle_file

    url, seeds = app_url
    good = tmp_path / "drivers.txt"
    good.write_text("测试区工会关爱货车司机\n\n本报讯 测试区工会今年为货车司机建成爱心驿站19个。\n", encoding="utf-8")
    memo, bad = tmp_path / "memo.docx", tmp_path / "node.docx"
    write_docx(["标题", "正文。"], memo)
    xml = zipfile.ZipFile(memo).read("word/document.xml")
    head, tail = xml.split(b"<w:body>")
    with zipfile.ZipFile(memo) as old, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as new:  # one text node over libxml2's 10 MB
        for member in old.infolist():
            body = head + b"<w:body><w:p><w:r><w:t>" + "职".encode() * (3_700_000) + b"</w:t></w:r></w:p>" + tail
            new.writestr(member, body if member.filename == "word/document.xml" else old.read(member))
    status = Client(url, verbose=False).predict([handle_file(str(good)), handle_file(str(bad))], False, api_name="/add_articles")
    assert "drivers.txt added" in status and "Refused: node.docx" in status and "Indexed:" in status, status
    chat, sources, _ = Client(url, verbose=False).predict("测试区工会今年为货车司机建成了多少个爱心驿站？", [], "Extractive (no model)", 5,
                                                          api_name="/respond")
    assert "19" in message_text(chat[-1]["content"]) and "drivers.txt" in sources


# Each character drawn in the page's own font, against a code point no font has: with no CJK font
# installed, Chinese text is drawn as that same missing-glyph box.
_GLYPHS = """(chars) => {
  const canvas = document.createElement('canvas'); canvas.width = 48; canvas.height = 48;
  const g = canvas.getContext('2d');
  const family = getComputedStyle(document.querySelector('#chat')).fontFamily;
  const draw = ch => { g.clearRect(0, 0, 48, 48); g.font = `36px ${family}`; g.fillText(ch, 4, 40); return canvas.toDataURL(); };
  const missing = draw(String.fromCodePoint(0x10FFFD));
  return chars.map(ch => draw(ch) !== missing);
}"""


def assert_chinese_renders(page) -> None:
    drawn = page.evaluate(_GLYPHS, list("工會乐陵"))
    assert all(drawn), f"Chinese text renders as missing glyphs ({drawn}): install a CJK font (make test installs fonts-noto-cjk)"


def _browser(p):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "install Debian's chromium (make test does)"
    return p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                                             "--disable-component-update", "--disable-sync", "--no-first-run"])


@contextlib.contextmanager
def _app_page(seeds: Path, index: Path, log: Path):
    """An app (extractive answers) over these folders, and a browser page on it; stopped after."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_process([str(ROOT / "app.py"), "--port", str(port), "--seeds", str(seeds), "--index", str(index)],
                         url, log, {"RAG_LLM_BACKEND": "extractive"})
    try:
        with sync_playwright() as p:
            browser = _browser(p)
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.goto(url)
            yield browser, page
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_conversation_and_its_feedback_outlive_the_app_and_become_a_case_rag_eval_runs(assistant, tmp_path, capsys):
    """Ask in a browser, mark the answer 👎 with a note, restart the app, find both again, export, eval."""
    from rag.cli import main

    seeds, index = copy_of(assistant, tmp_path)
    question = "湖湘劳模工匠馆的展示面积有多大？"
    with _app_page(seeds, index, tmp_path / "app.log") as (browser, page):
        page.locator("#question textarea").fill(question)
        page.locator("#ask").click()
        page.locator("#sources .source").first.wait_for(timeout=120_000)
        assert_chinese_renders(page)
        page.get_by_role("button", name="Dislike").last.click()
        page.get_by_text("Marked wrong").wait_for(timeout=20_000)
        page.locator("#note textarea").fill("答非所问")
        page.locator("#save-note").click()
        page.get_by_text("Note saved with the answer.").wait_for(timeout=20_000)
        other = browser.new_page()  # a second tab is a second conversation, not this one
        other.goto(page.url)
        other.locator("#question textarea").fill("宜昌市在全省建立了多少家疗休养基地？")
        other.locator("#ask").click()
        other.locator("#sources .source").first.wait_for(timeout=120_000)
        assert question not in other.locator("#chat").inner_text()

    with _app_page(seeds, index, tmp_path / "app2.log") as (browser, page):  # after a restart
        page.get_by_text("Conversations", exact=True).click()
        page.locator("#conversations input").click()
        page.get_by_role("option", name=question).click()
        page.locator("#open-conversation").click()
        page.get_by_text("Opened").wait_for(timeout=20_000)
        chat = page.locator("#chat").inner_text()
        assert page.get_by_role("button", name="Disliked").count() == 1  # its mark came back too
        days = page.locator("#feedback-days").inner_text()
        page.screenshot(path=str(ARTIFACTS / "desk.png"), full_page=True)
    assert question in chat and "1000" in chat  # the conversation came back after the restart
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert days.split(today)[1].split()[:3] == ["2", "0", "1"]  # two answers today, one marked wrong

    cases = tmp_path / "feedback.jsonl"
    assert main(["feedback", "export", str(cases), "--index", str(index)]) == 0
    [item] = load_items(cases)
    assert item["question"] == question and item["feedback"] == "wrong" and item["note"] == "答非所问"
    assert item["answerable"] is None and item["must_not"]  # what was marked wrong must not come back
    capsys.readouterr()
    main(["eval", str(cases), "--extractive", "--seeds", str(seeds), "--index", str(index)])
    assert "BAD" in capsys.readouterr().out  # the same answer again: the case to fix still fails


def test_a_corrupt_conversation_file_turns_history_off_on_the_page_and_the_chat_still_answers(assistant, tmp_path):
    import httpx
    from gradio_client import Client

    desk = tmp_path / "desk.sqlite3"
    desk.write_bytes(b"not a database " * 200)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_process([str(ROOT / "app.py"), "--port", str(port), "--seeds", str(assistant.config.seeds_dir),
                          "--index", str(assistant.config.index_dir)], url, tmp_path / "app.log",
                         {"RAG_LLM_BACKEND": "extractive", "RAG_DESK_PATH": str(desk)})
    try:
        config = json.dumps(httpx.get(f"{url}config").json(), ensure_ascii=False)
        assert "History is off" in config and "move it aside" in config
        chat, sources, _ = Client(url, verbose=False).predict("宜昌市在全省建立了多少家疗休养基地？", [], "Extractive (no model)", 5,
                                                              api_name="/respond")
        assert "15" in message_text(chat[-1]["content"]) and "000_1d8e9ba56c338e16.txt" in sources
    finally:
        proc.terminate()
        proc.wait(20)
    assert desk.read_bytes() == b"not a database " * 200  # the user's file is left as it was


def test_history_turns_off_for_the_session_when_the_file_fails_mid_use(tmp_path):
    import sqlite3

    from rag.chat import Desk
    from rag.desk import Journal

    desk = Desk(Journal(tmp_path / "desk.sqlite3", timeout=0.1))
    assert desk.call("start", "local") and desk.line() == ""
    holder = sqlite3.connect(tmp_path / "desk.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    assert desk.call("start", "local") is None  # no exception reaches the chat
    assert desk.line().startswith("⚠️ History is off") and "locked" in desk.line()
    assert desk.call("conversations", "local", default=[]) == []
    holder.execute("ROLLBACK")


def test_articles_are_listed_filtered_shown_as_indexed_and_deleted_to_a_restorable_trash(assistant, tmp_path):
    from gradio_client import Client

    from rag.config import load_config
    from rag.stores import open_store

    seeds, index = copy_of(assistant, tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_process([str(ROOT / "app.py"), "--port", str(port), "--seeds", str(seeds), "--index", str(index)],
                         url, tmp_path / "app.log", {"RAG_LLM_BACKEND": "extractive"})
    rows = lambda table: table["data"] if isinstance(table, dict) else table  # noqa: E731
    ask = lambda client, q: client.predict(q, [], "Extractive (no model)", 5, api_name="/respond")  # noqa: E731
    question, file = "乐陵市总工会2022年成立了多少个基层工会？", "004_27a72bc7b7d6e54f.txt"
    try:
        client = Client(url, verbose=False)
        table, line = client.predict("", "", 1, api_name="/articles")
        every = len(open_store(load_config(index_dir=index)).manifest.files)
        assert len(rows(table)) > every and "articles; page 1 of 1" in line  # a seed file holds several articles
        table, line = client.predict("", "樂陵", 1, api_name="/articles")  # either script
        found = rows(table)
        assert found and all(r[0] == file for r in found) and "樂陵" in found[0][2]
        _, nothing = client.predict("2031/01", "", 1, api_name="/articles")
        assert nothing.startswith("No article matches")
        shown = client.predict(file, found[0][1], api_name="/article")
        assert shown.count("class='sentence'") >= 5 and "樂陵" in shown

        assert file in ask(client, question)[1]
        status, _, _, trash = client.predict(file, "", "", 1, api_name="/delete_article")
        assert "moved to .trash/" in status and "1 removed" in status, status
        assert not (seeds / file).exists() and list((seeds / ".trash").rglob(file))
        assert file not in open_store(load_config(index_dir=index)).manifest.files  # its chunks left the index
        assert file not in ask(client, question)[1]  # the next answer cannot cite it
        assert "no longer in the seeds folder" in client.predict(file, 0, api_name="/article")  # another reader's view says so

        [trashed] = [c[0] if isinstance(c, (list, tuple)) else c for c in trash["choices"]] if isinstance(trash, dict) else [None]
        status, _, _, _ = client.predict(trashed, "", "", 1, api_name="/restore_article")
        assert "is back" in status and (seeds / file).exists()
        assert file in ask(client, question)[1]
        status, *_ = client.predict(file, "", "", 1, api_name="/reindex_article")
        assert status == f"{file} re-indexed."
        status, *_ = client.predict("../outside.txt", "", "", 1, api_name="/delete_article")
        assert status.startswith("Not deleted")
    finally:
        proc.terminate()
        proc.wait(20)


def test_in_a_browser_a_pdf_citation_opens_its_highlighted_page_and_a_deleted_article_leaves_the_answers(assistant, tmp_path):
    import io

    from formats import write_pdf
    from PIL import Image

    from rag.desk.pages import HIGHLIGHT

    seeds, index = copy_of(assistant, tmp_path)
    write_pdf(["测试县总工会建成一批驿站", "本报讯 测试县总工会今年建成户外劳动者驿站48个，覆盖全部乡镇。"], seeds / "测试版面.pdf")
    question = "测试县总工会今年建成了多少个户外劳动者驿站？"
    with _app_page(seeds, index, tmp_path / "app.log") as (browser, page):
        page.locator("#question textarea").fill(question)
        page.locator("#ask").click()
        page.locator("#sources .source").first.wait_for(timeout=120_000)
        assert "测试版面.pdf" in page.locator("#sources").inner_text()
        page.get_by_text("Page 1 as printed").first.click()
        image = page.locator("#sources details.page img").first
        image.wait_for(state="visible", timeout=20_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=20_000)
        shot = Image.open(io.BytesIO(image.screenshot())).convert("RGB")
        assert (np.abs(np.asarray(shot, dtype=int) - HIGHLIGHT).max(axis=2) <= 6).sum() > 100  # as drawn, within 6 levels

        page.get_by_text("Articles", exact=True).click()
        page.locator("#article-text textarea").fill("测试版面")
        page.locator("#list-articles").click()
        page.locator("#article-table").get_by_text("测试版面.pdf").filter(visible=True).first.click()
        page.wait_for_function("() => document.querySelector('#article-source textarea').value.endsWith('.pdf')", timeout=20_000)
        page.locator("#delete-article").click()
        page.get_by_text("moved to .trash/").wait_for(timeout=60_000)
        page.locator("#clear").click()  # it also empties the question box: wait for it before typing
        page.wait_for_function("() => document.querySelector('#sources').innerText.includes('appear here')", timeout=20_000)
        page.locator("#question textarea").fill(question)
        page.locator("#ask").click()
        try:
            page.wait_for_function("() => !document.querySelector('#sources').innerText.includes('appear here')", timeout=120_000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "articles.png"), full_page=True)
        assert "测试版面.pdf" not in page.locator("#sources").inner_text()
    assert not (seeds / "测试版面.pdf").exists()
