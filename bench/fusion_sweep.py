"""How the fusion weights were chosen: recall@1/5/20 over a grid of weights.

    .venv/bin/python bench/fusion_sweep.py

Candidate lists (dense and BM25, top `candidates` each) are computed once per
set and cached in /tmp; each grid point only re-fuses them.  The weights are
picked on DRCD (traditional) and checked on CMRC 2018 (simplified), so the
default is not fitted to the set it is reported on.
"""
from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import KS, SHARED, load_squad  # noqa: E402

from rag.text.script import to_search_form  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.text.terms import tokenize  # noqa: E402
from rag.stores import Manifest  # noqa: E402
from rag.stores.bm25 import Bm25  # noqa: E402
from rag.stores.faiss import FaissStore  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402

GRID = [(1.0, b) for b in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)]


def candidates(name: str, config) -> tuple[Retriever, list]:
    cache = Path("/tmp") / f"rag-sweep-{name}.pkl"
    from rag.embed import load_embedder

    chunks, questions = load_squad(SHARED / "bench" / name)
    if cache.exists():
        vectors, rows = pickle.loads(cache.read_bytes())
    else:
        embedder = load_embedder(config)
        vectors = embedder.encode_passages([c.search_text for c in chunks], progress=True)
        rows = None
    tokens = [tokenize(c.search_text) for c in chunks]
    manifest = Manifest(1, "", vectors.shape[1], {}, {}, len(chunks), "IndexFlatIP")
    index = FaissStore.in_memory(manifest, chunks, Bm25.from_tokens(tokens), vectors, config=config)
    retriever = Retriever(index, None, config)
    if rows is None:
        queries = [to_search_form(q) for q, _ in questions]
        qvec = embedder.encode_queries(queries)
        scores, ids = index.segments[0].faiss.search(qvec, config.candidates)
        rows = []
        for r, (query, (_, gold)) in enumerate(zip(queries, questions)):
            dense = [(int(i), float(s)) for i, s in zip(ids[r], scores[r]) if i >= 0]
            rows.append((dense, retriever.lexical(query, config.candidates), gold))
        cache.write_bytes(pickle.dumps((vectors, rows)))
    return retriever, rows


def recall(retriever: Retriever, rows: list, fusion: str) -> dict[str, float]:
    hits = {k: 0 for k in KS}
    by_id = {c.id: c for c in retriever.index.iter_chunks()}
    for dense, lexical, gold in rows:
        ranked = [i for i, _ in retriever.collapse(retriever.fuse(dense, lexical, fusion), max(KS), by_id)]
        for k in KS:
            hits[k] += gold in ranked[:k]
    return {f"@{k}": round(hits[k] / len(rows), 4) for k in KS}


def main() -> None:
    base = load_config()
    out: dict = {}
    for name in ("DRCD_dev.json", "cmrc2018_dev.json"):
        retriever, rows = candidates(name, base)
        table = {f: recall(retriever, rows, f) for f in ("bm25", "dense")}
        for fusion in ("cc", "rrf"):
            for dw, bw in GRID:
                retriever.config = base.with_overrides(dense_weight=dw, bm25_weight=bw)
                table[f"{fusion} dense={dw} bm25={bw}"] = recall(retriever, rows, fusion)
        retriever.config = base
        out[name] = table
        for key, value in table.items():
            print(f"{name:18} {key:28} {value}", flush=True)
    path = ROOT / "bench" / "results" / "fusion_sweep.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
