"""Does the judge decide as well with int8 weights? Its fp32 graph against int8 variants, on the
held-out tuning pairs it was calibrated on (every tenth paragraph of DRCD_test and CMRC trial).

    .venv/bin/python bench/judge_int8.py            # 2,953 pairs; about 8 min on two cores

Variants (`rag.graph.quantise`: ONNX Runtime dynamic quantisation, weights per channel in 7 bits):
every weight matrix, only the feed-forward layers, only the six lower layers (the installed e5's,
not trained). Per variant: milliseconds per 8 pairs, pairwise AUC (answer sentences against the
near misses), the share of answer sentences the shipped calibration accepts at `judge_threshold`,
and per near-miss kind the AUC and the share let through.
Results: bench/results/judge-int8.json.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import load_config  # noqa: E402
from rag.graph import Graph, judge_graph, load_graph, quantise  # noqa: E402
from rag.judge import CARD, WEIGHTS, padded, pair_text, tokenizer  # noqa: E402
from rag.judge.train import SETS, auc, examples  # noqa: E402


def layer(node: str) -> int:
    return int(node.split("layer.")[1].split("/")[0])


def variants(source: Path, folder: Path) -> dict[str, Path]:
    import onnx

    weighted = [n.name for n in onnx.load(str(source)).graph.node  # the attention products have no weights
                if n.op_type == "MatMul" and not n.name.endswith(("self/MatMul", "self/MatMul_1"))]
    chosen = {"int8_all": weighted,
              "int8_feed_forward": [n for n in weighted if "intermediate" in n or ("output/dense" in n and "attention" not in n)],
              "int8_lower_six": [n for n in weighted if layer(n) < 6]}
    out = {"fp32": source}
    for name, nodes in chosen.items():
        out[name] = quantise(source, folder / f"{name}.onnx", nodes)
    return out


def main() -> None:
    config = load_config()
    base, card = config.embed_model_path, json.loads(CARD.read_text())
    source = load_graph(judge_graph(base, card["sha256"]), base, WEIGHTS).path
    _, held = examples(SETS, 0)
    labels, kinds = np.array([r[2] for r in held]), np.array([r[3] for r in held])
    tok = tokenizer(base, config.judge_max_tokens)
    encoded = tok.encode_batch([pair_text(q, c, config.judge_context_chars) for q, c, _, _ in held])
    order = np.argsort([len(e.ids) for e in encoded], kind="stable")
    groups = np.array_split(order, max(1, len(held) // 8))  # a question's 8 candidates, similar lengths
    scale, shift, threshold = card["calibration"]["scale"], card["calibration"]["shift"], config.judge_threshold
    results, reference = {}, None
    with tempfile.TemporaryDirectory() as folder:
        for name, path in variants(source, Path(folder)).items():
            graph, logits = Graph(path, base), np.empty(len(held), dtype=np.float32)
            graph(*padded(tok, [encoded[i] for i in groups[0]]), 2)  # warm-up
            started = time.perf_counter()
            for group in groups:
                for half in np.array_split(group, 2):  # as the judge runs: passes of four
                    logits[half] = graph(*padded(tok, [encoded[i] for i in half]), 2)
            row = {"ms_per_8_pairs": round(1000 * (time.perf_counter() - started) / len(groups), 1),
                   "auc": round(auc(logits, labels), 4)}
            probability = 1 / (1 + np.exp(-(scale * logits + shift)))
            if reference is not None:
                row["largest_logit_difference"] = round(float(np.abs(logits - reference).max()), 3)
            reference = logits if reference is None else reference
            row["answers_accepted"] = round(float((probability[labels == 1] >= threshold).mean()), 3)
            for kind in sorted(set(kinds) - {"answer"}):
                both = (kinds == kind) | (labels == 1)
                row[kind] = {"auc": round(auc(logits[both], labels[both]), 4),
                             "let_through": round(float((probability[kinds == kind] >= threshold).mean()), 3)}
            results[name] = row
            print(name, json.dumps(row), flush=True)
    out = ROOT / "bench" / "results" / "judge-int8.json"
    out.write_text(json.dumps({"pairs": len(held), "threshold": threshold, "variants": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
