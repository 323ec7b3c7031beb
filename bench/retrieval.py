"""Retrieval benchmark: recall of BM25, dense and hybrid side by side, speed and memory.

    .venv/bin/python bench/retrieval.py                 # everything below
    .venv/bin/python bench/retrieval.py --skip-synthetic
    .venv/bin/python bench/retrieval.py --skip-sets --out bench/results/retrieval-synthetic.json

1. seeds_dev: rank of the answer-bearing chunk for every answerable question.
2. DRCD dev (traditional) and CMRC 2018 dev (simplified): every paragraph is a
   document (its article title prepended, as for seeds); recall@1/5/20 of the
   gold paragraph for bm25, dense, rrf and cc fusion over all questions.
3. Index build throughput, query latency (median, p95) through the full
   hybrid path at bench corpus size, and FAISS flat / HNSW / IVF latency and
   recall@10 on 100k and 1M synthetic vectors shaped like real ones; peak RAM.
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.text.script import to_search_form  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.text.terms import tokenize  # noqa: E402
from rag.stores import Manifest  # noqa: E402
from rag.stores.bm25 import Bm25  # noqa: E402
from rag.stores.faiss import FaissStore, make_faiss  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402
from rag.types import Chunk  # noqa: E402

SHARED = ROOT.parent / "shared"
FUSIONS = ("bm25", "dense", "rrf", "cc")
KS = (1, 5, 20)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seeds_dev(config) -> dict:
    from rag import Assistant

    bot = Assistant(**{"seeds_dir": config.seeds_dir, "index_dir": config.index_dir})
    items = [json.loads(x) for x in (SHARED / "qa" / "seeds_dev.jsonl").read_text().splitlines() if x.strip()]
    out = {}
    for fusion in FUSIONS:
        ranks = []
        for q in (q for q in items if q["answerable"]):
            passages = bot.retrieve(q["question"], k=5, fusion=fusion)
            hit = next(
                (r for r, p in enumerate(passages, 1)
                 if p.source in q["sources"] and all(any(re.search(m, to_search_form(p.text)) for m in g) for g in q["must"])),
                None,
            )
            ranks.append(hit)
        out[fusion] = {"top5": sum(r is not None for r in ranks), "top1": sum(r == 1 for r in ranks), "of": len(ranks)}
    return out


def load_squad(path: Path, limit: int | None = None) -> tuple[list[Chunk], list[tuple[str, int]]]:
    """Every paragraph as a document; `limit` keeps the first paragraphs and their questions."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    chunks, questions = [], []
    for article in data:
        for para in article["paragraphs"]:
            if limit is not None and len(chunks) == limit:
                return chunks, questions
            i = len(chunks)
            text, title = para["context"], article.get("title", "")
            chunks.append(Chunk(i, path.name, title, text, to_search_form(f"{title}\n{text}"), 0, len(text)))
            questions.extend((q["question"], i) for q in para["qas"])
    return chunks, questions


def reading_set(path: Path, embedder, config, limit: int | None = None) -> dict:
    chunks, questions = load_squad(path, limit)
    t0 = time.time()
    vectors = embedder.encode_passages([c.search_text for c in chunks], progress=True)
    embed_s = time.time() - t0
    tokens = [tokenize(c.search_text) for c in chunks]
    manifest = Manifest(1, embedder.name, embedder.dim, {}, {}, len(chunks), "IndexFlatIP")
    index = FaissStore.in_memory(manifest, chunks, Bm25.from_tokens(tokens), vectors, config=config)
    retriever = Retriever(index, embedder, config)

    queries = [to_search_form(q) for q, _ in questions]
    t0 = time.time()
    qvec = embedder.encode_queries(queries)
    query_s = time.time() - t0
    n = max(config.candidates, max(KS))
    scores, ids = index.segments[0].faiss.search(qvec, n)
    hits = {f: {k: 0 for k in KS} for f in FUSIONS}
    by_id = {c.id: c for c in chunks}
    for row, (query, gold) in enumerate(zip(queries, (g for _, g in questions))):
        dense = [(int(i), float(s)) for i, s in zip(ids[row], scores[row]) if i >= 0]
        lexical = retriever.lexical(query, n)
        for fusion in FUSIONS:
            ranked = [i for i, _ in retriever.collapse(retriever.fuse(dense, lexical, fusion), max(KS), by_id)]
            for k in KS:
                hits[fusion][k] += gold in ranked[:k]

    latencies = []
    for query in queries[:200]:
        t = time.perf_counter()
        retriever.search(query, 5)
        latencies.append((time.perf_counter() - t) * 1000)
    total = len(questions)
    return {
        "documents": len(chunks),
        "questions": total,
        "recall": {f: {f"@{k}": round(hits[f][k] / total, 4) for k in KS} for f in FUSIONS},
        "embed_docs_per_s": round(len(chunks) / embed_s, 1),
        "embed_queries_per_s": round(total / query_s, 1),
        "hybrid_query_ms": {"median": round(statistics.median(latencies), 1), "p95": round(float(np.percentile(latencies, 95)), 1)},
    }


def synthetic(sizes: list[int], real: np.ndarray, config) -> dict:
    """ANN speed and recall on corpora shaped like real embeddings.

    Isotropic random vectors have no neighbourhood structure (every point is about
    equally far from every other), so approximate indexes look far worse on them
    than on text.  Each synthetic vector here is a random blend of two real chunk
    or sentence vectors of the seeds index plus noise; queries are held-out
    vectors drawn the same way, and recall@10 is measured against exact search.
    """
    import faiss

    faiss.omp_set_num_threads(config.threads or 2)
    rng = np.random.default_rng(0)
    dim = real.shape[1]

    def draw(n: int) -> np.ndarray:
        out = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 100_000):
            m = min(100_000, n - start)
            a = rng.random((m, 1), dtype=np.float32)
            x = a * real[rng.integers(len(real), size=m)] + (1 - a) * real[rng.integers(len(real), size=m)]
            x += 0.3 * rng.standard_normal((m, dim), dtype=np.float32) / np.sqrt(dim)
            out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    out = {}
    for n in sizes:
        base, queries = draw(n), draw(200)
        row = {}
        truth = None
        kinds = ["flat", "ivf", "hnsw"]
        for kind in kinds:
            cfg = config.with_overrides(ann_threshold=0 if kind != "flat" else n, ann=kind if kind != "flat" else "hnsw")
            t0 = time.time()
            index = make_faiss(base, cfg)
            build_s = time.time() - t0
            lat, found = [], []
            for q in queries:
                t = time.perf_counter()
                _, ids = index.search(q[None, :], 10)
                lat.append((time.perf_counter() - t) * 1000)
                found.append(ids[0])
            found = np.array(found)
            if kind == "flat":
                truth = found
            recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))
            row[kind] = {
                "build_s": round(build_s, 1),
                "median_ms": round(statistics.median(lat), 2),
                "p95_ms": round(float(np.percentile(lat, 95)), 2),
                "recall@10_vs_flat": round(recall, 3),
            }
            del index
        out[str(n)] = row
        print(f"synthetic {n}: {row}", flush=True)
        del base
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-sets", action="store_true", help="leave out DRCD and CMRC (the slow part)")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrieval.json")
    args = parser.parse_args()
    config = load_config()
    results: dict = {}

    from rag import Assistant

    bot = Assistant()
    t0 = time.time()
    report = bot.index(rebuild=True, progress=False)
    results["seeds_index"] = {"chunks": report.chunks, "seconds": round(time.time() - t0, 1),
                              "chunks_per_s": round(report.chunks / (time.time() - t0), 1)}
    results["seeds_dev"] = seeds_dev(config)
    print(json.dumps(results, ensure_ascii=False), flush=True)

    embedder = bot.embedder
    for name in () if args.skip_sets else ("DRCD_dev.json", "cmrc2018_dev.json"):
        results[name] = reading_set(SHARED / "bench" / name, embedder, config)
        print(name, json.dumps(results[name]), flush=True)
    results["peak_rss_mib_after_bench_corpora"] = round(peak_rss_mib())
    if not args.skip_synthetic:
        index = bot.retriever.index
        real = np.concatenate([a for s in index.segments for a in (s.vectors, s.sentence_vectors)]).astype(np.float32)
        results["synthetic"] = synthetic([int(s) for s in args.sizes.split(",")], real, config)
    results["peak_rss_mib"] = round(peak_rss_mib())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
