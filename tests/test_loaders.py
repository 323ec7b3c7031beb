"""Every format goes through the same pipeline as .txt: fixtures are written by the real
tools (reportlab, python-docx) from the seed articles, then read back by `rag.loaders`."""
from __future__ import annotations

import difflib
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from formats import WRITERS, source_lines, write_docx, write_html, write_pdf

from rag.loaders.decode import SkippedFileError, UnreadableFileError
from rag.clean import clean
from rag.config import Config
from rag.index import _scan, chunk_file
from rag.loaders import SUPPORTED, load, page_at


def similarity(a: str, b: str) -> float:
    strip = lambda s: re.sub(r"\s+", "", s)  # noqa: E731
    return difflib.SequenceMatcher(None, strip(a), strip(b), autojunk=False).ratio()


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory, seed_files) -> dict[str, dict[str, Path]]:
    """seed name -> suffix -> the seed written in that format."""
    folder = tmp_path_factory.mktemp("formats")
    out = {}
    for seed in seed_files:
        lines = source_lines(seed.read_text(encoding="utf-8"))
        out[seed.name] = {}
        for suffix, write in WRITERS.items():
            path = folder / f"{seed.stem}{suffix}"
            write(lines, path)
            out[seed.name][suffix] = path
    return out


@pytest.mark.parametrize("suffix, floor", [(".pdf", 0.98), (".docx", 0.98), (".md", 0.98), (".html", 0.95)])
def test_extracted_text_matches_the_source_article(fixtures, seed_files, suffix, floor):
    for seed in seed_files:
        text = load(fixtures[seed.name][suffix]).text
        assert similarity(seed.read_text(encoding="utf-8"), text) >= floor, f"{seed.name} as {suffix}"


def test_pdf_columns_are_read_apart_and_pages_kept(fixtures, seed_files):
    seed = seed_files[0]
    document = load(fixtures[seed.name][".pdf"])
    assert len(document.pages) >= 2 and document.pages[0] == 0
    # the fixture draws rows across both columns in turn: a reader following drawing order fails this
    for line in source_lines(seed.read_text(encoding="utf-8")):
        if len(line) > 60:
            assert re.sub(r"\s", "", line)[:40] in re.sub(r"\s", "", document.text), line[:40]
    assert not re.search(r"^\d{1,3}$", document.text, re.M), "page numbers are not text"
    second = document.text[document.pages[1]:document.pages[1] + 20]
    assert page_at(document, document.text.index(second)) == 2 and page_at(document, 0) == 1


@pytest.mark.parametrize("suffix", [".pdf", ".docx", ".md"])
def test_page_break_pinyin_and_repeat_repairs_work_on_every_format(fixtures, seed_files, suffix):
    for seed in seed_files:
        want = [p.text for p in clean(seed.read_text(encoding="utf-8"))]
        got = [p.text for p in clean(load(fixtures[seed.name][suffix]).text)]
        # the same text after repair; a PDF may cut a paragraph where a column ends after a full stop
        assert "".join(got).replace(" ", "") == "".join(want).replace(" ", ""), f"{seed.name} as {suffix}"
    assert not any("(chuàng)" in p.text for p in clean(load(fixtures[seed_files[4].name][suffix]).text))


def test_web_page_keeps_the_article_and_drops_the_site(fixtures, seed_files, tmp_path):
    for seed in seed_files:
        text = load(fixtures[seed.name][".html"]).text
        first = source_lines(seed.read_text(encoding="utf-8"))[0]
        assert text.startswith(first) and "2023-05-03" in text
        for boilerplate in ("首页", "广告：新楼盘", "热门文章", "全国劳动模范表彰大会召开", "版权所有", "网站地图"):
            assert boilerplate not in text, (seed.name, boilerplate)
    gbk = tmp_path / "gbk.html"  # a page saved in its legacy encoding, declared in <meta charset>
    write_html(source_lines(seed_files[0].read_text(encoding="utf-8")), gbk, encoding="gb18030")
    assert similarity(load(gbk).text, load(fixtures[seed_files[0].name][".html"]).text) > 0.99


def test_markdown_markup_is_stripped(fixtures, seed_files):
    text = load(fixtures[seed_files[1].name][".md"]).text
    assert "**" not in text and not text.startswith("#")


# ---- bad input: a clear message naming the file ----------------------------------

def test_scanned_pdf_says_ocr_is_not_supported(tmp_path):
    from PIL import Image
    from reportlab.pdfgen import canvas

    picture = tmp_path / "scan.png"
    Image.new("L", (400, 300), 255).save(picture)
    pdf = canvas.Canvas(str(tmp_path / "scan.pdf"))
    pdf.drawImage(str(picture), 50, 400, 400, 300)
    pdf.showPage()
    pdf.save()
    with pytest.raises(UnreadableFileError, match=r"scan\.pdf: no text layer.*images.*OCR is not supported"):
        load(tmp_path / "scan.pdf")


def test_encrypted_damaged_and_empty_files_are_refused_by_name(tmp_path, seed_files):
    from reportlab.pdfgen import canvas

    locked = canvas.Canvas(str(tmp_path / "locked.pdf"), encrypt="secret")
    locked.drawString(100, 700, "members")
    locked.showPage()
    locked.save()
    with pytest.raises(UnreadableFileError, match=r"locked\.pdf: .*password"):
        load(tmp_path / "locked.pdf")
    good = tmp_path / "good.pdf"
    write_pdf(source_lines(seed_files[3].read_text(encoding="utf-8")), good)
    (tmp_path / "cut.pdf").write_bytes(good.read_bytes()[:600])
    with pytest.raises(UnreadableFileError, match=r"cut\.pdf: not a readable PDF"):
        load(tmp_path / "cut.pdf")
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UnreadableFileError, match=r"broken\.docx: not a readable Word"):
        load(tmp_path / "broken.docx")
    with zipfile.ZipFile(tmp_path / "nodoc.docx", "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(UnreadableFileError, match=r"nodoc\.docx"):
        load(tmp_path / "nodoc.docx")
    (tmp_path / "nav.html").write_text("<html><body><nav><a href='/'>首页</a></nav></body></html>", encoding="utf-8")
    with pytest.raises(UnreadableFileError, match=r"nav\.html: no article text"):
        load(tmp_path / "nav.html")
    (tmp_path / "blank.md").write_text("#\n\n---\n", encoding="utf-8")
    with pytest.raises(SkippedFileError, match=r"blank\.md"):
        load(tmp_path / "blank.md")
    (tmp_path / "notes.rtf").write_text("{\\rtf1}", encoding="utf-8")
    with pytest.raises(UnreadableFileError, match=r"notes\.rtf: not a format.*\.pdf"):
        load(tmp_path / "notes.rtf")


def test_a_200_mb_file_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.pdf"
    with open(huge, "wb") as f:
        f.truncate(200 * 2**20)  # sparse: no disk used, and never read
    with pytest.raises(UnreadableFileError, match=r"huge\.pdf: 200\.0 MB, above the 50 MB limit.*max_file_mb"):
        chunk_file(huge, Config())



def _with_document_xml(source: Path, out: Path, body: bytes) -> None:
    """A copy of a real .docx whose word/document.xml is replaced."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        for member in old.infolist():
            new.writestr(member, body if member.filename == "word/document.xml" else old.read(member))


def test_a_word_file_is_bounded_by_what_it_unpacks_to(tmp_path, fixtures, seed_files):
    """A zip bomb: 40 MB of XML deflates to ~40 KB; it is refused from the zip's directory,
    before python-docx inflates it (the probe's 3 MB bomb reached 13.5 GB)."""
    real = fixtures[seed_files[0].name][".docx"]
    xml = zipfile.ZipFile(real).read("word/document.xml")
    head, tail = xml.split(b"<w:body>")
    _with_document_xml(real, tmp_path / "bomb.docx", head + b"<w:body>" + b" " * (40 * 2**20) + tail)
    assert (tmp_path / "bomb.docx").stat().st_size < 2**20
    with pytest.raises(UnreadableFileError, match=r"bomb\.docx: unpacks to 4\d MB, above the 20 MB limit.*max_file_mb"):
        chunk_file(tmp_path / "bomb.docx", Config(max_file_mb=20))


def test_a_word_file_with_a_huge_text_node_is_one_clear_line(tmp_path, fixtures, seed_files):
    real = fixtures[seed_files[0].name][".docx"]
    xml = zipfile.ZipFile(real).read("word/document.xml")
    head, tail = xml.split(b"<w:body>")
    node = b"<w:p><w:r><w:t>" + "职".encode() * (11 * 2**20 // 3 + 1) + b"</w:t></w:r></w:p>"  # over libxml2's 10 MB
    _with_document_xml(real, tmp_path / "node.docx", head + b"<w:body>" + node + tail)
    with pytest.raises(UnreadableFileError, match=r"node\.docx: not a readable Word"):
        load(tmp_path / "node.docx")


def test_text_past_the_limit_is_refused_whatever_the_format(tmp_path, fixtures, seed_files):
    pdf = fixtures[seed_files[0].name][".pdf"]  # a few kB of text on disk, unpacked page by page
    with pytest.raises(UnreadableFileError, match=r"\.pdf: more than [\d,]+ characters of text by page 1, above the 0\.001 MB limit"):
        load(pdf, max_mb=0.001)
    with pytest.raises(UnreadableFileError, match=r"characters of text, above the 0\.001 MB limit"):
        load(seed_files[0], max_mb=0.001)



def test_a_markdown_list_nested_ten_deep_keeps_the_rest_of_the_file(tmp_path):
    """markdown-it stops at 20 levels of nesting and dropped everything after such a list."""
    deep = "".join("  " * i + f"- 第{i}层\n" for i in range(12))
    (tmp_path / "deep.md").write_text(f"# 测试县工会简报\n\n{deep}\n本报讯 测试县工会今年新建职工书屋18家。\n", encoding="utf-8")
    text = load(tmp_path / "deep.md").text
    assert "第11层" in text and "新建职工书屋18家" in text and "- " not in text


def test_a_web_page_gets_no_date_it_does_not_state():
    """trafilatura may guess a date for a page that gives none (1995-01-01 was added to one)."""
    from rag.loaders.html import _stated

    assert _stated("2024-07-15", '<meta content="2024-07-15">') and _stated("2024-07-05", "<p>2024年7月5日 本报讯</p>")
    assert not _stated("1995-01-01", "<p>本报讯 测试县工会今年新建职工书屋18家。</p>")


def test_each_format_gives_the_date_its_metadata_states(tmp_path):
    from rag.loaders.pdf import pdf_date

    lines = ["测试县工会简报", "本报讯 测试县工会今年新建职工书屋18家。"]
    write_pdf(lines, tmp_path / "dated.pdf", created="2021-03-15")
    write_docx(lines, tmp_path / "dated.docx", created="2022-11-02")
    write_html(lines, tmp_path / "dated.html")  # <meta property="article:published_time" content="2023-05-03">
    assert [load(tmp_path / f"dated{s}").date for s in (".pdf", ".docx", ".html")] == ["2021-03-15", "2022-11-02", "2023-05-03"]
    (tmp_path / "plain.txt").write_text("\n".join(lines), encoding="utf-8")
    assert load(tmp_path / "plain.txt").date == ""  # a text file has no metadata: its dateline, if any, dates it
    assert pdf_date("D:20210315080000+08'00'") == "2021-03-15" and pdf_date("20210315") == "2021-03-15"
    assert pdf_date("D:20211345") == "" and pdf_date("") == "" and pdf_date("yesterday") == ""


# ---- folder trees --------------------------------------------------------------

def test_seeds_are_read_recursively_by_relative_path(tmp_path, fixtures, seed_files):
    seeds = tmp_path / "seeds"
    (seeds / "2023" / "05").mkdir(parents=True)
    (seeds / ".git").mkdir()
    shutil.copy(fixtures[seed_files[0].name][".pdf"], seeds / "2023" / "05" / "page3.pdf")
    shutil.copy(seed_files[1], seeds / "one.txt")
    (seeds / ".git" / "notes.txt").write_text("hidden", encoding="utf-8")
    (seeds / ".draft.md").write_text("# hidden", encoding="utf-8")
    (seeds / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("不应读到", encoding="utf-8")
    os.symlink(outside, seeds / "linked")
    os.symlink(seeds / "2023", seeds / "again")  # a link inside the folder: its files are read once, by their real path
    files, refused = _scan(seeds)
    assert list(files) == ["2023/05/page3.pdf", "one.txt"]
    assert "outside the seeds folder" in refused["linked"] and "not a format" in refused["photo.jpg"]
    assert set(refused) == {"linked", "photo.jpg"}
    chunks = chunk_file(files["2023/05/page3.pdf"], Config(), "2023/05/page3.pdf")
    assert {c.source for c in chunks} == {"2023/05/page3.pdf"}
    assert chunks[0].page == 1 and chunks[-1].page == len(load(files["2023/05/page3.pdf"]).pages)
    assert all(a.page <= b.page for a, b in zip(chunks, chunks[1:]))


def test_supported_formats_are_listed_once():
    assert len(SUPPORTED) == len(set(SUPPORTED)) and {".txt", ".pdf", ".docx", ".html", ".htm", ".md"} <= set(SUPPORTED)


# ---- the whole pipeline over a mixed archive (real embedding model) ---------------

@pytest.fixture(scope="module")
def mixed(tmp_path_factory, fixtures, seed_files, embedder):
    """The five seeds, each in another format, in a folder tree."""
    from rag import Assistant

    base = tmp_path_factory.mktemp("mixed")
    seeds = base / "seeds"
    (seeds / "2023" / "05").mkdir(parents=True)
    formats = [".pdf", ".docx", ".html", ".md", ".pdf"]
    for number, (seed, suffix) in enumerate(zip(seed_files, formats)):
        target = seeds / ("2023/05" if number == 4 else "") / f"{seed.stem}{suffix}"
        shutil.copy(fixtures[seed.name][suffix], target)
    bot = Assistant(seeds_dir=seeds, index_dir=base / "index", llm_backend="extractive", embedder=embedder)
    bot.index(progress=False)
    return bot


@pytest.mark.slow
def test_dev_questions_find_their_facts_in_every_format(mixed, qa_items):
    from test_retrieve import supports

    answerable = [q for q in qa_items if q["answerable"]]
    found = 0
    for q in answerable:
        stems = {Path(s).stem for s in q["sources"]}
        passages = mixed.retrieve(q["question"], k=5)
        found += any(Path(p.source).stem in stems and supports(p.__class__(**{**p.__dict__, "source": q["sources"][0]}), q) for p in passages)
    assert found >= 12, f"{found}/{len(answerable)}"


@pytest.mark.slow
def test_pdf_citations_carry_the_page_and_every_format_shows_whole_articles(mixed):
    passages = mixed.retrieve("乐陵市工人文化宫2022年提供志愿服务时长多少小时？", k=3)
    top = passages[0]
    assert top.source == "2023/05/004_27a72bc7b7d6e54f.pdf" and top.page >= 1
    assert f"p. {top.page}" in top.location
    document = load(mixed.config.seeds_dir / top.source)
    assert page_at(document, top.start) == top.page
    assert document.text[top.start] == top.text[0] and document.text[top.end - 1] == top.text[-1]
    for source in ("000_1d8e9ba56c338e16.pdf", "001_41217243920f4699.docx", "002_cd2845773dc97c2c.html", "003_d9c16fd44bbfe975.md"):
        title, text = mixed.article_text(source, 0)
        assert title and len(text) > 50


@pytest.mark.slow
def test_the_archive_follows_the_folder_before_each_question(mixed, fixtures, seed_files):
    seeds = mixed.config.seeds_dir
    question = "宜昌市在全省建立了多少家疗休养基地？"
    assert any(p.source == "000_1d8e9ba56c338e16.pdf" for p in mixed.retrieve(question, k=3))
    moved = seeds / "2023" / "000_1d8e9ba56c338e16.docx"
    shutil.copy(fixtures[seed_files[0].name][".docx"], moved)
    (seeds / "000_1d8e9ba56c338e16.pdf").unlink()  # removed while the app runs
    sources = {p.source for p in mixed.retrieve(question, k=3)}
    assert "000_1d8e9ba56c338e16.pdf" not in sources and "2023/000_1d8e9ba56c338e16.docx" in sources
    with pytest.raises(FileNotFoundError):
        mixed.article_text("000_1d8e9ba56c338e16.pdf", 0)
    assert mixed.sync() is None  # nothing changed since: a stat scan, no rebuild
