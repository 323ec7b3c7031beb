"""The two stores side by side: recall, query latency, write and open time on DRCD and CMRC dev.

    .venv/bin/python bench/stores.py --out bench/results/stores.json

Every paragraph is a document (as in bench/retrieval.py). The paragraphs are
embedded once; the same chunks, vectors, BM25 terms and sentence vectors are then
written to a FAISS store and to a Milvus Lite store, and every question goes
through each store's dense and BM25 search, our fusion and near-duplicate
collapse. Latency is that path per question, without embedding the question
(the same for both stores; reported once).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from output import report  # noqa: E402
from retrieval import KS, SHARED, load_squad  # noqa: E402

from rag.text.script import to_search_form  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.embed import load_embedder  # noqa: E402
from rag.text.terms import tokenize  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402
from rag.stores import FORMAT_VERSION, Manifest, Update, chunking_params, empty_store, open_store  # noqa: E402

SETS = ("DRCD_dev.json", "cmrc2018_dev.json")
STORES = ("faiss", "milvus")


def with_sentences(chunks):
    """Sentence spans as the chunker gives them, so each store also writes its sentence vectors."""
    out = []
    for c in chunks:
        spans = [(m.start(), m.end()) for m in re.finditer(r"[^。！？!?]+[。！？!?]*", c.text)]
        out.append(dataclasses.replace(c, sentences=tuple(spans)))
    return out


def run_set(name: str, embedder, workdir: Path) -> dict:
    chunks, questions = load_squad(SHARED / "bench" / name)
    chunks = with_sentences(chunks)
    t0 = time.time()
    vectors = embedder.encode_passages([c.search_text for c in chunks], progress=True)
    embed_s = time.time() - t0
    rows = sum(len(c.sentences) for c in chunks)
    rng = np.random.default_rng(0)
    sentence_vectors = rng.standard_normal((rows, embedder.dim)).astype(np.float32)  # stand-ins: written, never ranked here
    sentence_vectors /= np.linalg.norm(sentence_vectors, axis=1, keepdims=True)
    tokens = [tokenize(c.search_text) for c in chunks]
    queries = [to_search_form(q) for q, _ in questions]
    t0 = time.time()
    qvec = embedder.encode_queries(queries)
    query_embed_ms = (time.time() - t0) / len(queries) * 1000
    qterms = [tokenize(q) for q in queries]

    result = {"documents": len(chunks), "questions": len(questions), "embed_s": round(embed_s, 1),
              "query_embedding_ms": round(query_embed_ms, 1), "stores": {}}
    for kind in STORES:
        config = load_config(store=kind, index_dir=workdir / f"{name}-{kind}", milvus_collection="bench")
        manifest = Manifest(FORMAT_VERSION, embedder.name, embedder.dim, chunking_params(config), {name: "-"}, 0, "")
        t0 = time.time()
        store = empty_store(config, embedder.name, embedder.dim)
        store = store.write(Update(manifest, set(), chunks, tokens, vectors, sentence_vectors))
        write_s = time.time() - t0
        del store
        t0 = time.time()
        store = open_store(config)
        open_s = time.time() - t0
        retriever = Retriever(store, embedder, config)
        n = max(config.candidates, max(KS))
        hits = {k: 0 for k in KS}
        latencies = []
        for row, (_, gold) in enumerate(questions):
            t = time.perf_counter()
            fused = retriever.fuse(store.dense(qvec[row], n), store.lexical(qterms[row], n), config.fusion)
            found = store.chunks(i for i, _ in fused)
            ranked = [i for i, _ in retriever.collapse([(i, s) for i, s in fused if i in found], max(KS), found)]
            latencies.append((time.perf_counter() - t) * 1000)
            for k in KS:
                hits[k] += gold in ranked[:k]
        result["stores"][kind] = {
            "recall": {f"@{k}": round(hits[k] / len(questions), 4) for k in KS},
            "query_ms": {"median": round(statistics.median(latencies), 1), "p95": round(float(np.percentile(latencies, 95)), 1)},
            "write_s": round(write_s, 1),
            "open_s": round(open_s, 2),
        }
        print(name, kind, json.dumps(result["stores"][kind]), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    embedder = load_embedder(load_config())
    workdir = Path(tempfile.mkdtemp(prefix="rag-stores-"))
    try:
        results = {name: run_set(name, embedder, workdir) for name in SETS}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, args.out)


if __name__ == "__main__":
    main()
