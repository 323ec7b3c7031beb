"""Refusal calibration: does the assistant answer when the articles hold the answer, and
refuse when they do not, on the same questions?

    .venv/bin/python bench/refusals.py                 # 100 DRCD questions, 1.5B model
    .venv/bin/python bench/refusals.py -n 50 --set cmrc2018_dev.json

Each sampled question is asked twice over the corpus that bench/answers.py builds
(same --work folder, so its index is reused): once as is, and once with every
retrieved passage that holds a gold answer string removed, so the question is about
a thing the remaining articles do not state while their topic is close. The second
case is the hard one for a small model: related text is there, the fact is not.
Results: bench/results/refusals-<set>.json.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from answers import WORK, prepare  # noqa: E402

from rag.evaluate import grade, normalise  # noqa: E402


def golds_of(item: dict) -> list[str]:
    return [p.replace("\\", "") for p in item["must"][0]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--set", default="DRCD_dev.json")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--paragraphs", type=int, default=0, help="only the first N paragraphs of the set")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/refusals-<set>[-<paragraphs>].json)")
    args = parser.parse_args()
    bot, items = prepare(args.set, args.work, {}, args.paragraphs)
    items = random.Random(1).sample(items, args.n)
    bot.index(progress=True)
    bot.warm()
    search = bot.retriever.search
    rows = []
    for item in items:
        golds = golds_of(item)
        holds = lambda p: any(g in normalise(p.text) for g in golds)  # noqa: E731
        bot.retriever.search = search
        with_gold = bot.ask(item["question"])
        bot.retriever.search = lambda q, k, fusion=None, scope=None: [p for p in search(q, 3 * k, fusion, scope) if not holds(p)][:k]
        without = bot.ask(item["question"])
        rows.append({
            "question": item["question"],
            "with_gold": {"answer": with_gold.text, "refused": with_gold.refused, "retried": with_gold.trace.retried,
                          "correct": grade(item, with_gold).correct, "quote_judged": with_gold.trace.quote_judged,
                          "context": with_gold.trace.quote_context,
                          "why": with_gold.trace.why},
            "without_gold": {"answer": without.text, "refused": without.refused, "retried": without.trace.retried,
                             "quote_judged": without.trace.quote_judged, "context": without.trace.quote_context,
                             "why": without.trace.why},
        })
        print(f"{int(rows[-1]['with_gold']['correct'])} {int(without.refused)} {item['question'][:30]} | "
              f"{with_gold.text[:40]} | {without.text[:40]}", flush=True)
    share = lambda xs: round(sum(xs) / len(xs), 3)  # noqa: E731
    summary = {
        "set": args.set, "questions": len(rows),
        "with_gold_correct": share([r["with_gold"]["correct"] for r in rows]),
        "with_gold_refused": share([r["with_gold"]["refused"] for r in rows]),
        "without_gold_refused": share([r["without_gold"]["refused"] for r in rows]),
        "without_gold_wrong": share([not r["without_gold"]["refused"] for r in rows]),
        "without_gold_answered_after_retry": sum(r["without_gold"]["retried"] and not r["without_gold"]["refused"] for r in rows),
    }
    out = args.out or ROOT / "bench" / "results" / f"refusals-{Path(args.set).stem}{f'-{args.paragraphs}' if args.paragraphs else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "items": rows}, ensure_ascii=False, indent=1))
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
