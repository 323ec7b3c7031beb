"""Answer speed per model on this machine: TTFT, generation tokens/s, peak RAM.

    .venv/bin/python bench/llm_speed.py            # both bundled models, one process each

Each model answers the answerable seeds_dev questions after a warm-up (models
loaded, system prompt cached), as a user of the running app experiences it.
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QA = ROOT.parent / "shared" / "qa" / "seeds_dev.jsonl"


def measure(model: str) -> dict:
    from rag import Assistant
    from rag.types import Answer

    bot = Assistant(llm_model=model)
    t0 = time.time()
    bot.warm()
    load_s = time.time() - t0
    tokenizer = bot.generator.llm
    ttfts, rates, totals = [], [], []
    for line in QA.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if not item["answerable"]:
            continue
        start = time.perf_counter()
        first = None
        text = ""
        for piece in bot.ask_stream(item["question"]):
            if isinstance(piece, Answer):
                continue
            first = first or time.perf_counter()
            text += piece
        end = time.perf_counter()
        totals.append(end - start)
        if first is None:
            continue
        ttfts.append(first - start)
        tokens = len(tokenizer.tokenize(text.encode(), add_bos=False))
        if end > first and tokens > 1:
            rates.append((tokens - 1) / (end - first))
    return {
        "model": model,
        "load_and_warm_s": round(load_s, 1),
        "ttft_median_s": round(statistics.median(ttfts), 2),
        "ttft_p95_s": round(sorted(ttfts)[int(0.95 * (len(ttfts) - 1))], 2),
        "gen_tokens_per_s": round(statistics.median(rates), 1),
        "answer_total_median_s": round(statistics.median(totals), 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(measure(sys.argv[1])))
        return
    results = []
    for model in ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"):
        out = subprocess.run([sys.executable, __file__, model], capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    target = ROOT / "bench" / "results" / "llm_speed.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
