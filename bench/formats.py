"""File formats benchmark: extraction quality, PDF speed, retrieval per format, install size.

    .venv/bin/python bench/formats.py                   # everything below
    .venv/bin/python bench/formats.py --skip-retrieval  # no embedding model needed

1. Every seed article is written as PDF (two columns, reportlab's STSong-Light CID font),
   Word (python-docx), web page (article inside header/nav/ad/sidebar/footer) and
   Markdown by the same writers the tests use, then read back by `rag.loaders`:
   character similarity (whitespace ignored) against the source file.
2. PDF libraries side by side on those PDFs: similarity and pages/s for our loader
   (PDFium characters + XY-cut order) and, when installed, the plain text of pypdfium2,
   pdfminer.six, pdfplumber and pypdf.
3. For each format, an index over the five seeds in that format and the 13 answerable
   seeds_dev questions: answer-bearing passage in the top 5.
4. Size each new dependency adds to the virtual environment.
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from formats import WRITERS, source_lines  # noqa: E402

from rag.text.script import to_search_form  # noqa: E402
from rag.loaders import load  # noqa: E402

SEEDS = sorted((ROOT / "seeds").glob("*.txt"))
QA = ROOT / "tests" / "data" / "seeds_dev.jsonl"


def similarity(a: str, b: str) -> float:
    strip = lambda s: re.sub(r"\s+", "", s)  # noqa: E731
    return difflib.SequenceMatcher(None, strip(a), strip(b), autojunk=False).ratio()


def write_fixtures(folder: Path) -> dict[str, dict[str, Path]]:
    out = {}
    for seed in SEEDS:
        lines = source_lines(seed.read_text(encoding="utf-8"))
        out[seed.name] = {}
        for suffix, write in WRITERS.items():
            path = folder / suffix.strip(".") / f"{seed.stem}{suffix}"
            path.parent.mkdir(exist_ok=True)
            write(lines, path)
            out[seed.name][suffix] = path
    return out


def extraction(fixtures) -> dict:
    rows = {}
    for suffix in WRITERS:
        sims, seconds = [], 0.0
        for seed in SEEDS:
            started = time.perf_counter()
            text = load(fixtures[seed.name][suffix]).text
            seconds += time.perf_counter() - started
            sims.append(similarity(seed.read_text(encoding="utf-8"), text))
        rows[suffix] = {"min": round(min(sims), 4), "mean": round(sum(sims) / len(sims), 4), "seconds": round(seconds, 3)}
    return rows


def pdf_libraries(fixtures) -> dict:
    def ours(path):
        return load(path).text

    def pdfium_plain(path):
        import pypdfium2 as pdfium
        return "\n".join(page.get_textpage().get_text_range() for page in pdfium.PdfDocument(str(path)))

    def pdfminer(path):
        from pdfminer.high_level import extract_text
        return extract_text(str(path))

    def pdfplumber(path):
        import pdfplumber as plumber
        with plumber.open(path) as pdf:
            return "\n".join(page.extract_text() or "" for page in pdf.pages)

    def pypdf(path):
        import pypdf as lib
        return "\n".join(page.extract_text() for page in lib.PdfReader(path).pages)

    rows = {}
    for name, read in (("zhiwen (pypdfium2 + XY cut)", ours), ("pypdfium2 plain", pdfium_plain), ("pdfminer.six", pdfminer),
                       ("pdfplumber", pdfplumber), ("pypdf", pypdf)):
        sims, seconds, pages = [], 0.0, 0
        try:
            for seed in SEEDS:
                path = fixtures[seed.name][".pdf"]
                started = time.perf_counter()
                text = read(path)
                seconds += time.perf_counter() - started
                sims.append(similarity(seed.read_text(encoding="utf-8"), text))
                pages += len(load(path).pages)
        except ImportError:
            rows[name] = "not installed"
            continue
        rows[name] = {"similarity_min": round(min(sims), 4), "similarity_mean": round(sum(sims) / len(sims), 4),
                      "pages": pages, "pages_per_s": round(pages / seconds, 1)}
    return rows


def retrieval(fixtures) -> dict:
    from rag import Assistant
    from rag.embed import load_embedder
    from rag.config import load_config

    items = [json.loads(line) for line in QA.read_text(encoding="utf-8").splitlines() if line.strip()]
    answerable = [q for q in items if q["answerable"]]
    embedder = load_embedder(load_config())
    rows = {}
    for suffix in (".txt", *WRITERS):
        with tempfile.TemporaryDirectory() as tmp:
            seeds = Path(tmp) / "seeds"
            seeds.mkdir()
            for seed in SEEDS:
                shutil.copy(seed if suffix == ".txt" else fixtures[seed.name][suffix], seeds)
            bot = Assistant(seeds_dir=seeds, index_dir=Path(tmp) / "index", llm_backend="extractive", embedder=embedder)
            started = time.perf_counter()
            bot.index(progress=False)
            seconds = time.perf_counter() - started
            hits = 0
            for q in answerable:
                stems = {Path(s).stem for s in q["sources"]}
                for p in bot.retrieve(q["question"], k=5):
                    text = to_search_form(p.text)
                    if Path(p.source).stem in stems and all(any(re.search(x, text) for x in group) for group in q["must"]):
                        hits += 1
                        break
            rows[suffix] = {"top5_hits": hits, "questions": len(answerable), "index_seconds": round(seconds, 1)}
        print(suffix, rows[suffix], flush=True)
    return rows


def install_sizes() -> dict:
    """MB on disk of each distribution the formats brought in (dependencies shared with others counted once)."""
    new = ["pypdfium2", "python-docx", "lxml", "trafilatura", "lxml_html_clean", "courlan", "htmldate", "justext",
           "dateparser", "babel", "tld", "tzlocal", "regex", "charset-normalizer", "urllib3"]
    sizes = {}
    for name in new:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        total = sum(f.size or 0 for f in dist.files or [])
        sizes[name] = round(total / 2**20, 1)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-retrieval", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "formats.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fixtures = write_fixtures(Path(tmp))
        result = {"extraction": extraction(fixtures)}
        print(json.dumps(result["extraction"], indent=1), flush=True)
        result["pdf_libraries"] = pdf_libraries(fixtures)
        print(json.dumps(result["pdf_libraries"], indent=1, ensure_ascii=False), flush=True)
        if not args.skip_retrieval:
            result["retrieval"] = retrieval(fixtures)
    result["install_mb"] = install_sizes()
    print(json.dumps(result["install_mb"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
