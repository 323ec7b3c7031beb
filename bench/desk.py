"""Desk benchmark: the Articles list over 20,000 articles, a PDF page rendered with its highlight,
and the conversation file's writes.

    .venv/bin/python bench/desk.py          # writes bench/results/desk.json

1. A store of 20,000 articles (100,000 chunks: five per article, in 400 folders, every tenth
   dated) stands in for a large archive; the catalogue is built once per index generation
   (one pass over the chunks), then each listing filters it and cuts a page of 50 rows.
2. An A4 two-column page of seed text (reportlab, as the tests write PDFs), rendered at the
   app's scale with a 30-character quote highlighted: median of 20.
3. 200 answers recorded into a fresh SQLite journal, one transaction each.
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from rag.desk import Journal  # noqa: E402
from rag.desk.articles import catalogue, matching  # noqa: E402
from rag.desk.pages import render  # noqa: E402
from rag.types import Answer, Chunk, Passage, Trace  # noqa: E402

ARTICLES, CHUNKS_EACH, ROWS = 20_000, 5, 50


def fake_store():
    chunks = []
    for a in range(ARTICLES):
        source = f"{2000 + a % 20}/{a % 20 + 1:02d}/page{a % 400}-{a}.txt"
        head = (f"本报讯 {2000 + a % 20}年{a % 12 + 1}月{a % 28 + 1}日，" if a % 10 == 0 else "本报记者 李润钊\n") + "工会开展活动。" * 20
        for c in range(CHUNKS_EACH):
            chunks.append(Chunk(len(chunks), source, f"第{a}篇 工会新闻", head if c == 0 else "正文。" * 50, "", c * 300, c * 300 + 300))
    return SimpleNamespace(iter_chunks=lambda: iter(chunks), manifest=SimpleNamespace(problems={"bad.pdf": "no text layer"}))


def timed(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    results = {}
    store = fake_store()
    built, entries = timed(lambda: catalogue(store), 3)
    results["catalogue_build_s"] = round(built, 3)
    for name, folder, text in (("list_all", "", ""), ("filter_folder", "2010/11", ""), ("filter_text", "", "第1999篇"),
                               ("filter_both", "2005", "李润钊")):
        seconds, found = timed(lambda: matching(entries, folder, text)[:ROWS], 5)
        results[f"{name}_s"] = round(seconds, 4)
        results[f"{name}_rows"] = len(found)
    results["articles"] = len(entries)

    from formats import write_pdf

    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "page.pdf"
        lines = [line for line in (ROOT / "seeds" / "000_1d8e9ba56c338e16.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
        write_pdf(lines[:40], pdf)
        quote = "".join(lines[6].split())[10:40]
        seconds, page = timed(lambda: render(pdf, 1, quote), 20)
        results["page_render_median_s"] = round(seconds, 4)
        results["page_highlighted_chars"] = len(page.boxes)
        results["page_pixels"] = list(page.image.size)

        journal = Journal(Path(tmp) / "desk.sqlite3")
        conversation = journal.start("bench")
        answer = Answer("成立了15个基层工会。[1]", [Passage("共成立基层工会15个。", "a.txt", "t", 1.0, 0, 10)], trace=Trace(ttft=1.0, seconds=2.0))
        start = time.perf_counter()
        for i in range(200):
            journal.record(conversation, f"问题{i}", answer, "m", "g")
        results["journal_record_ms"] = round((time.perf_counter() - start) / 200 * 1000, 2)
    print(json.dumps(results, ensure_ascii=False, indent=1))
    out = ROOT / "bench" / "results" / "desk.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
