"""Why the judge's gate refuses answerable questions: for each question of an answers run
(bench/answers.py), where the dense + lexical pre-selection ranks the sentence holding the gold
answer, and what the judge gives it when it reads that many candidates (not only `judge_candidates`).

    .venv/bin/python bench/gate.py --tag graph --candidates 40

A gold sentence ranked first and judged below `judge_threshold` is the judge's miss; one ranked
below the candidates the judge reads is the pre-selection's. Results: bench/results/gate-<tag>.json.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from answers import SETS, WORK, prepare  # noqa: E402

from rag.answering.evidence import rank  # noqa: E402
from rag.evaluate import normalise  # noqa: E402
from rag.judge import load_judge  # noqa: E402


def run(name: str, tag: str, candidates: int, work: Path) -> dict:
    bot, items = prepare(name, work, {"llm_backend": "extractive"})
    bot.index(progress=True)
    config = bot.config.with_overrides(judge_candidates=candidates)
    judge = load_judge(config.embed_model_path, config.judge_max_tokens, config.judge_context_chars, config.judge_dir)
    by_id = {i["id"]: i for i in items}
    answered = json.loads((ROOT / "bench" / "results" / f"answers-{Path(name).stem}-{tag}.json").read_text())["items"]
    rows = []
    for result in answered:
        item = by_id[result["id"]]
        golds = [normalise(g.replace("\\", "")) for g in item["must"][0]]
        holds = lambda text: any(g in normalise(text) for g in golds)  # noqa: E731
        passages = bot.retrieve(item["question"], k=config.k)
        ranked = rank(item["question"], passages, bot.retriever.index, bot.embedder, config, judge)
        by_score = sorted(ranked, key=lambda e: -e.score)
        judged = [e for e in ranked if e.judged is not None]
        rows.append({"id": result["id"], "refused": result["refused"], "why": result["why"],
                     "gold_pre_rank": next((i for i, e in enumerate(by_score) if holds(e.text)), None),
                     "gold_judged": max((round(e.judged, 3) for e in judged if holds(e.text)), default=None),
                     "best_judged": round(max((e.judged for e in judged), default=0.0), 3)})
    gate = [r for r in rows if r["why"].startswith("no sentence answers")]
    first = [r for r in gate if r["gold_pre_rank"] == 0]
    summary = {"set": name, "questions": len(rows), "gold_ranked_first": sum(r["gold_pre_rank"] == 0 for r in rows),
               "gate_refusals": len(gate), "gate_gold_ranked_first": len(first),
               "gate_gold_within_judge_candidates": sum(r["gold_pre_rank"] is not None and r["gold_pre_rank"] < bot.config.judge_candidates for r in gate),
               f"gate_gold_judged_above_threshold_at_{candidates}_candidates": sum((r["gold_judged"] or 0) >= config.judge_threshold for r in gate),
               "gate_gold_judged": dict(sorted(collections.Counter(
                   "none" if r["gold_judged"] is None else f"<{(int(r['gold_judged'] * 10) + 1) / 10:.1f}" for r in gate).items()))}
    return {"summary": summary, "items": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--tag", default="graph", help="the answers run to read (answers-<set>-<tag>.json)")
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--work", type=Path, default=WORK)
    args = parser.parse_args()
    out = {name: run(name, args.tag, args.candidates, args.work) for name in args.sets.split(",")}
    for result in out.values():
        print(json.dumps(result["summary"], ensure_ascii=False))
    (ROOT / "bench" / "results" / f"gate-{args.tag}.json").write_text(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
