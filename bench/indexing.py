"""Indexing and start-up: what a new user waits for.

    .venv/bin/python bench/indexing.py --out bench/results/indexing.json           # all below
    .venv/bin/python bench/indexing.py --skip-drcd                                  # without the 4-minute build
    .venv/bin/python bench/indexing.py --large-only                                 # part 3 only
    .venv/bin/python bench/indexing.py --skip-large                                 # parts 1 and 2
    .venv/bin/python bench/indexing.py --archive 20000 --out bench/results/indexing-archive-20k.json

1. `rag index` of the five seeds and of DRCD dev (every paragraph a file), each in a
   fresh process: wall time, the build's own split by stage, peak RSS.
2. Cold start: `rag ask "…"` from a fresh process to its first answer byte, and
   `python app.py` to a page that answers (the app loads index and models first).
3. Opening a large FAISS store: 20k and 100k chunks (DRCD paragraphs repeated, random
   unit vectors, eight sentences each), open time, first query, RSS, in a fresh process;
   and writing 10 more files (50 chunks) into it, without their embedding, then opening it again.
4. `--archive N`: `rag index` of N paragraph files (DRCD and CMRC paragraphs cycled, each file
   distinct), time, split and peak RSS; then `rag index` after adding 10 files.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from output import report  # noqa: E402

SHARED = ROOT.parent / "shared"
PY = sys.executable
RAG = [PY, "-m", "rag.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def timed_run(command: list[str]) -> dict:
    """Run to completion in a fresh process: wall time, peak RSS (GNU time), and what it printed."""
    started = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "maxrss_kib=%M", *command], capture_output=True, text=True, env=ENV, cwd=ROOT)
    wall = time.perf_counter() - started
    if out.returncode:
        raise SystemExit(f"{command} failed: {out.stderr[-2000:]}")
    rss = int(re.findall(r"maxrss_kib=(\d+)", out.stderr)[-1])
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(rss / 1024), "stdout": out.stdout}


def index_run(seeds: Path, index: Path) -> dict:
    shutil.rmtree(index, ignore_errors=True)
    run = timed_run([*RAG, "--seeds", str(seeds), "--index", str(index), "index"])
    line = next(x for x in run.pop("stdout").splitlines() if "chunks indexed" in x)
    run["build_s"] = float(re.search(r"indexed in ([\d.]+)s", line).group(1))
    run["chunks"] = int(line.split()[0])
    run["stages_s"] = {k: float(v) for k, v in re.findall(r"(?:\(|, )([a-z0-9 ]+?) ([\d.]+)s", line)} if "(" in line else {}
    return run


def first_byte(command: list[str]) -> float:
    """Seconds from starting the process to the first byte it writes to stdout (the first streamed token)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT)
    proc.stdout.read(1)
    seconds = time.perf_counter() - started
    proc.wait()
    return round(seconds, 1)


def app_ready(seeds: Path, index: Path) -> float:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    proc = subprocess.Popen([PY, "app.py", "--port", str(port), "--seeds", str(seeds), "--index", str(index)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT)
    try:
        while time.perf_counter() - started < 300:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                return round(time.perf_counter() - started, 1)
            except OSError:
                time.sleep(0.2)
        raise SystemExit("the app did not answer within 300 s")
    finally:
        proc.terminate()
        proc.wait()


def archive_run(n: int, work: Path) -> dict:
    """`rag index` of n paragraph files (DRCD and CMRC paragraphs, cycled: a paragraph seen again
    gets a numbered headline, so every file and chunk is distinct), then `rag index` again after
    10 new files are added."""
    paragraphs = [(a["title"], p["context"]) for name in ("DRCD_dev.json", "DRCD_test.json", "cmrc2018_dev.json", "cmrc2018_trial.json")
                  for a in json.loads((SHARED / "bench" / name).read_text(encoding="utf-8"))["data"] for p in a["paragraphs"]]
    seeds, index = work / f"archive-{n}", work / f"archive-{n}-index"
    seeds.mkdir()

    def write(i: int) -> None:
        title, text = paragraphs[i % len(paragraphs)]
        (seeds / f"{i:06d}.txt").write_text(f"{title}（{i // len(paragraphs) + 1}）\n\n{text}\n", encoding="utf-8")

    for i in range(n):
        write(i)
    result = index_run(seeds, index)
    for i in range(n, n + 10):
        write(i)
    add = timed_run([*RAG, "--seeds", str(seeds), "--index", str(index), "index"])
    line = next(x for x in add.pop("stdout").splitlines() if "chunks indexed" in x)
    result["add_10_files"] = {**add, "build_s": float(re.search(r"indexed in ([\d.]+)s", line).group(1)), "report": line.strip()}
    result["files"] = n
    return result


def large_store(n: int, work: Path) -> dict:
    """Write a FAISS store of n chunks, then open it and search once in a fresh process."""
    code = f"""
import json, sys, numpy as np
sys.path.insert(0, {str(ROOT)!r})
from rag.config import Config
from rag.text.terms import tokenize
from rag.stores import FORMAT_VERSION, Manifest, Update, empty_store
from rag.types import Chunk
data = json.load(open({str(SHARED / 'bench' / 'DRCD_dev.json')!r}))["data"]
texts = [p["context"][:350] for a in data for p in a["paragraphs"]]
terms = [tokenize(t) for t in texts]
rng = np.random.default_rng(0)
chunks, tokens = [], []
for i in range({n}):
    t = texts[i % len(texts)]
    step = max(1, len(t) // 8)
    spans = tuple((a, min(len(t), a + step)) for a in range(0, step * 8, step))
    chunks.append(Chunk(i, f"file{{i // 5}}.txt", "title", t, t, 0, len(t), 0, spans))
    tokens.append(terms[i % len(texts)])
def unit(rows):
    v = rng.standard_normal((rows, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)
config = Config(index_dir=__import__("pathlib").Path(sys.argv[1]))
store = empty_store(config, "bench", 384)
manifest = Manifest(FORMAT_VERSION, "bench", 384, {{}}, {{c.source: "-" for c in chunks}}, 0, "")
store.write(Update(manifest, set(), chunks, tokens, unit(len(chunks)), unit(8 * len(chunks))))
"""
    index = work / f"large-{n}"
    subprocess.run([PY, "-c", code, str(index)], check=True, env=ENV)
    probe = f"""
import resource, sys, time
sys.path.insert(0, {str(ROOT)!r})
import numpy as np
from rag.stores.faiss import FaissStore
from rag.text.terms import tokenize
started = time.perf_counter()
store = FaissStore.load(__import__("pathlib").Path(sys.argv[1]))
opened = time.perf_counter() - started
started = time.perf_counter()
store.dense(np.ones(384, np.float32) / 384 ** 0.5, 50); store.lexical(tokenize("台灣的首都在哪裡"), 50)
for i in range(5): store.sentence_vectors_of(i)
query = time.perf_counter() - started
print(opened, query, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    add = f"""
import sys, time, numpy as np, dataclasses
sys.path.insert(0, {str(ROOT)!r})
from rag.stores.faiss import FaissStore
from rag.stores import Update
store = FaissStore.load(__import__("pathlib").Path(sys.argv[1]))
new = [dataclasses.replace(c, id=0, source=f"added{{i // 5}}.txt") for i, c in enumerate(list(store.iter_chunks())[:50])]
manifest = dataclasses.replace(store.manifest, files={{**store.manifest.files, **{{c.source: "+" for c in new}}}})
rng = np.random.default_rng(1)
def unit(rows):
    v = rng.standard_normal((rows, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)
started = time.perf_counter()
store.write(Update(manifest, set(), new, [["新"]] * len(new), unit(len(new)), unit(8 * len(new))))
print(time.perf_counter() - started)
"""
    # twice: the first open of a generation also verifies its checksums once
    first, second = (subprocess.run([PY, "-c", probe, str(index)], capture_output=True, text=True, env=ENV, check=True).stdout.split()
                     for _ in range(2))
    size = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    added = float(subprocess.run([PY, "-c", add, str(index)], capture_output=True, text=True, env=ENV, check=True).stdout)
    after = subprocess.run([PY, "-c", probe, str(index)], capture_output=True, text=True, env=ENV, check=True).stdout.split()
    return {"add_10_files_write_s": round(added, 2), "chunks": n, "disk_mib": round(size / 2**20), "first_open_s": round(float(first[0]), 2),
            "open_s": round(float(second[0]), 2), "first_query_s": round(float(second[1]), 3), "rss_mib": round(float(second[2])),
            "first_open_after_add_s": round(float(after[0]), 2), "rss_after_add_mib": round(float(after[2]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--skip-drcd", action="store_true")
    parser.add_argument("--large-only", action="store_true", help="only part 3, the large stores")
    parser.add_argument("--skip-large", action="store_true", help="everything but part 3")
    parser.add_argument("--archive", type=int, default=0, help="only part 4: index an archive of this many paragraph files")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rag-indexing-"))
    results: dict = {}
    try:
        if args.archive:
            results["archive"] = archive_run(args.archive, work)
            report(results, args.out)
            return
        if args.large_only:
            results["large"] = [large_store(n, work) for n in (20_000, 100_000)]
            report(results, args.out)
            return
        results["seeds"] = index_run(ROOT / "seeds", work / "seeds-index")
        print("seeds", results["seeds"], flush=True)
        question = "宜昌市在全省建立了多少家疗休养基地？"
        results["cold_ask_first_byte_s"] = first_byte([*RAG, "--seeds", str(ROOT / "seeds"), "--index", str(work / "seeds-index"), "ask", question])
        results["cold_ask_extractive_first_byte_s"] = first_byte(
            [*RAG, "--seeds", str(ROOT / "seeds"), "--index", str(work / "seeds-index"), "ask", "--extractive", question])
        results["app_ready_s"] = app_ready(ROOT / "seeds", work / "seeds-index")
        print("cold", {k: v for k, v in results.items() if k != "seeds"}, flush=True)
        if not args.skip_large:
            results["large"] = [large_store(n, work) for n in (20_000, 100_000)]
            print("large", results["large"], flush=True)
        if not args.skip_drcd:
            seeds = work / "drcd-seeds"
            seeds.mkdir()
            for article in json.loads((SHARED / "bench" / "DRCD_dev.json").read_text(encoding="utf-8"))["data"]:
                for i, para in enumerate(article["paragraphs"]):
                    (seeds / f"{article.get('id', article['title'])}_{i}.txt").write_text(f"{article['title']}\n\n{para['context']}\n", encoding="utf-8")
            results["drcd_dev"] = index_run(seeds, work / "drcd-index")
            print("drcd", results["drcd_dev"], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, args.out)


if __name__ == "__main__":
    main()
