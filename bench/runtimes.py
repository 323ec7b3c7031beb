"""Runtimes for e5 and the judge side by side, on the same DRCD dev paragraphs and questions.

    .venv/bin/python bench/runtimes.py                # 96 paragraphs, 20 questions; about 3 min
    .venv/bin/pip install openvino && .venv/bin/python bench/runtimes.py   # adds OpenVINO

Passages (batches of 8, longest first, as indexing embeds them): torch fp32 (the reference), the
exported graph (`rag.graph`) in ONNX Runtime fp32, the same graph with int8 weights (ONNX Runtime
dynamic quantisation, per channel, 7-bit for AVX2 without VNNI), and OpenVINO fp32 when installed;
paragraphs per second and the lowest cosine to torch. The judge: a question's 8 candidates as
answering scores them, torch fp32 (the trained network) against the graph in each runtime;
milliseconds per question and the largest logit difference.
Results: bench/results/runtimes.json.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import load_config  # noqa: E402
from rag.embed import load_embedder  # noqa: E402
from rag.hardware import physical_cores  # noqa: E402
from rag.graph import ENCODER, Graph, judge_graph, quantise  # noqa: E402
from rag.judge import Candidate, load_judge, padded, pair_text  # noqa: E402
from rag.judge.pairs import Neighbours, negatives, read_set  # noqa: E402

DRCD = ROOT.parent / "shared" / "bench" / "DRCD_dev.json"


def timed(run, batches) -> tuple[float, list[np.ndarray]]:
    run(batches[0])  # warm: sessions and memory maps
    started = time.perf_counter()
    out = [run(b) for b in batches]
    return time.perf_counter() - started, out


def runners(graph: Path, base: Path, threads: int, folder: Path) -> dict:
    """name -> f(ids, mask) over the graph in each runtime."""
    ort, quantised = Graph(graph, base), Graph(quantise(graph, folder / f"{graph.stem}-int8.onnx"), base)
    out = {"onnxruntime fp32": lambda ids, mask: ort(ids, mask, threads),
           "onnxruntime int8": lambda ids, mask: quantised(ids, mask, threads)}
    words = ort.words
    try:
        import openvino
    except ImportError:
        return out
    compiled = openvino.Core().compile_model(str(graph), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                                 "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    out["openvino fp32"] = lambda ids, mask: request.infer({"vectors": np.asarray(words[ids], np.float32), "mask": mask})[
        compiled.output(0)].copy()
    return out


def passages(n: int, threads: int, folder: Path) -> dict:
    import torch
    from transformers import AutoModel

    config = load_config()
    embedder = load_embedder(config)
    embedder._load()
    texts = ["passage: " + p["context"] for a in json.loads(DRCD.read_text())["data"] for p in a["paragraphs"]][:n]
    texts.sort(key=len, reverse=True)
    batches = [embedder._batch(texts[i : i + 8], False)[:2] for i in range(0, len(texts), 8)]
    pool = lambda h, m: (h * m[..., None]).sum(1) / m.sum(1, keepdims=True)  # noqa: E731
    torch.set_num_threads(threads)
    model = AutoModel.from_pretrained(str(embedder.path)).eval()

    def reference(batch):
        with torch.inference_mode():
            ids, mask = (torch.from_numpy(x) for x in batch)
            return pool(model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy(), batch[1])

    seconds, expected = timed(reference, batches)
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    expected = unit(np.concatenate(expected))
    result = {"paragraphs": len(texts), "tokens": int(sum(b[1].sum() for b in batches)),
              "torch fp32": {"paragraphs_per_s": round(len(texts) / seconds, 2)}}
    for name, run in runners(embedder.path / ENCODER, embedder.path, threads, folder).items():
        seconds, vectors = timed(lambda b: pool(run(*b), b[1]), batches)
        cosine = (unit(np.concatenate(vectors)) * expected).sum(1)
        result[name] = {"paragraphs_per_s": round(len(texts) / seconds, 2), "lowest_cosine_to_torch": round(float(cosine.min()), 5)}
        print(name, result[name], flush=True)
    return result


def judge(n: int, threads: int, folder: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    from rag.judge.model import CrossEncoder

    config = load_config()
    judge = load_judge(config.embed_model_path, config.judge_max_tokens, config.judge_context_chars)
    judge.warm()
    corpus = read_set(DRCD)
    near, rng = Neighbours(corpus), random.Random(0)
    questions = []
    for q in rng.sample(corpus.questions, n):
        rows = [q.gold[0]] + [i for i, _ in negatives(corpus, near, q, rng)][: config.judge_candidates - 1]
        s = [corpus.sentences[i] for i in rows]
        encoded = judge._tokenizer.encode_batch([pair_text(q.text, Candidate(x.text, x.title, x.context), judge.before_chars) for x in s])
        order = np.argsort([len(e.ids) for e in encoded], kind="stable")  # as Judge.logits batches them
        questions.append([padded(judge._tokenizer, [encoded[i] for i in g]) for g in np.array_split(order, max(1, len(s) // 4))])
    torch.set_num_threads(threads)
    trained = CrossEncoder(judge.base, int(judge.card["trained_layers"]))
    trained.load_trained(load_file(str(judge.weights)))
    trained.eval()

    def reference(groups):
        with torch.inference_mode():
            return np.concatenate([trained(torch.from_numpy(i), torch.from_numpy(m)).numpy() for i, m in groups])

    seconds, expected = timed(reference, questions)
    result = {"questions": n, "candidates": config.judge_candidates,
              "tokens_per_question": round(float(np.mean([sum(int(m.sum()) for _, m in g) for g in questions])), 1),
              "torch fp32": {"ms_per_question": round(1000 * seconds / n, 1)}}
    for name, run in runners(judge_graph(judge.base, judge.card["sha256"]), judge.base, threads, folder).items():
        seconds, logits = timed(lambda groups: np.concatenate([run(i, m) for i, m in groups]), questions)
        diff = np.abs(np.concatenate(logits) - np.concatenate(expected))
        result[name] = {"ms_per_question": round(1000 * seconds / n, 1), "largest_logit_difference": round(float(diff.max()), 4)}
        print(name, result[name], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=96, help="paragraphs")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "runtimes.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = {"threads": args.threads, "passages": passages(args.n, args.threads, Path(folder)),
                   "judge": judge(args.questions, args.threads, Path(folder))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
