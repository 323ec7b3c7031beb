"""The judge against the rules it replaces, without the answer model: does the best sentence it
reads answer the question (with gold) or not (near misses), and is the answer in the evidence?

    .venv/bin/python bench/judge.py --sets DRCD_dev.json,cmrc2018_dev.json -n 200
    .venv/bin/python bench/judge.py --sets DRCD_test.json,cmrc2018_trial.json --held-out -n 200   # choose the threshold

The three kinds of bench/near_miss.py (with_gold, same_article, changed_constraint) are built the
same way; per question and kind it records the judge's best probability and the best dense +
lexical score it replaces (what `refuse_below` gated on), and whether a sentence holding the gold
answer is in the first evidence, ranked by the judge and by that score.
--held-out keeps only the tuning questions the judge was not trained on (every tenth paragraph).
Results: bench/results/judge-<set>[-tag].json.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from answers import SHARED, WORK, prepare  # noqa: E402

from rag.evaluate import normalise  # noqa: E402
from rag.answering.evidence import best_judged, choose, judge_in_passes, rank  # noqa: E402
from rag.judge import load_judge, pair_text  # noqa: E402
from rag.judge.pairs import ConstraintPool, changed_question, read_set  # noqa: E402
from rag.judge.train import auc  # noqa: E402

KINDS = ("with_gold", "same_article", "changed_constraint")


def run(name: str, n: int, work: Path, seed: int, held_out: bool) -> dict:
    bot, items = prepare(name, work, {})
    corpus = read_set(SHARED / "bench" / name)
    questions = {q.id: q for q in corpus.questions}
    pool, rng = ConstraintPool(corpus), random.Random(seed)
    items = [i for i in items if i["id"] in questions and (not held_out or questions[i["id"]].paragraph % 10 == 0)]
    items = random.Random(seed).sample(items, min(n, len(items)))
    bot.index(progress=True)
    config, retriever, embedder = bot.config, bot.retriever, bot.embedder
    judge = load_judge(config.embed_model_path, config.judge_max_tokens, config.judge_context_chars, config.judge_dir)
    rows = []
    for item in items:
        golds = [normalise(g.replace("\\", "")) for g in item["must"][0]]
        holds = lambda text: any(g in normalise(text) for g in golds)  # noqa: E731
        gold_file = item["sources"][0]
        cases = {"with_gold": (item["question"], retriever.search(item["question"], config.k))}
        wider = retriever.search(item["question"], 3 * config.k)
        cases["same_article"] = (item["question"], [p for p in wider if p.source != gold_file and not holds(p.text)][: config.k])
        changed = changed_question(corpus, pool, questions[item["id"]], rng)
        if changed:
            cases["changed_constraint"] = (changed, retriever.search(changed, config.k))
        entry = {"id": item["id"], "question": item["question"]}
        for kind, (question, passages) in cases.items():
            plain = rank(question, passages, retriever.index, embedder, config)
            judged = rank(question, passages, retriever.index, embedder, config, judge)
            entry[kind] = {"question": question, "judge": round(best_judged(judged), 4),
                           "score": round(plain[0].score, 4) if plain else 0.0, "best": judged[0].text[:80] if judged else ""}
            if kind == "with_gold":
                entry[kind]["gold_in_evidence_judge"] = any(holds(e.text) for e in choose(question, judged, config).shown)
                entry[kind]["gold_in_evidence_old"] = any(holds(e.text) for e in choose(question, plain, config).shown)
        rows.append(entry)
    return {"summary": summarise(name, rows, config.judge_threshold), "items": rows}


def speed(name: str, n: int, work: Path, seed: int) -> dict:
    """Milliseconds the judge adds to a question, after one warm-up: reading the candidates as the
    evidence does (`evidence.judge_in_passes`, stopping once sure), and, in the same run, all of
    them in one call as before."""
    import time

    bot, items = prepare(name, work, {})
    bot.index(progress=False)
    config, retriever, embedder = bot.config, bot.retriever, bot.embedder
    judge = load_judge(config.embed_model_path, config.judge_max_tokens, config.judge_context_chars, config.judge_dir)
    judge.warm()
    times, every, tokens, counts = [], [], [], []
    for item in random.Random(seed).sample(items, min(n, len(items))):
        ranked = rank(item["question"], retriever.search(item["question"], config.k), retriever.index, embedder, config)
        candidates = ranked[: config.judge_candidates]
        started = time.perf_counter()
        judge.score(item["question"], [e.candidate for e in candidates])
        every.append(1000 * (time.perf_counter() - started))
        started = time.perf_counter()
        read = judge_in_passes(item["question"], candidates, judge, config)
        times.append(1000 * (time.perf_counter() - started))
        counts.append(len(read))
        tokens.append(sum(len(e.ids) for e in judge._tokenizer.encode_batch(
            [pair_text(item["question"], e.candidate, judge.before_chars) for e in read])))
    median = lambda xs: round(float(np.median(xs)), 1)  # noqa: E731
    p95 = lambda xs: round(sorted(xs)[int(0.95 * (len(xs) - 1))], 1)  # noqa: E731
    return {"set": name, "questions": len(times), "candidates": config.judge_candidates,
            "read_mean": round(float(np.mean(counts)), 2), "tokens_median": int(np.median(tokens)),
            "ms_median": median(times), "ms_p95": p95(times), "all_ms_median": median(every), "all_ms_p95": p95(every)}


def summarise(name: str, rows: list[dict], threshold: float) -> dict:
    share = lambda xs: round(float(np.mean(xs)), 3) if len(xs) else None  # noqa: E731
    gold = [r["with_gold"] for r in rows]
    summary = {"set": name, "questions": len(rows), "threshold": threshold,
               "with_gold": {"judge_refuses": share([g["judge"] < threshold for g in gold]),
                             "gold_in_evidence_judge": share([g["gold_in_evidence_judge"] for g in gold]),
                             "gold_in_evidence_old": share([g["gold_in_evidence_old"] for g in gold])}}
    for kind in KINDS[1:]:
        done = [r for r in rows if kind in r]
        scores = np.array([r["with_gold"]["judge"] for r in done] + [r[kind]["judge"] for r in done])
        labels = np.array([1] * len(done) + [0] * len(done))
        summary[kind] = {"questions": len(done), "judge_accepts": share([r[kind]["judge"] >= threshold for r in done]),
                         "judge_auc_vs_with_gold": round(auc(scores, labels), 4) if done else None,
                         "score_auc_vs_with_gold": round(auc(np.array([r["with_gold"]["score"] for r in done] + [r[kind]["score"] for r in done]), labels), 4) if done else None}
    sweep = {}
    for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        sweep[t] = {"with_gold_refused": share([g["judge"] < t for g in gold]),
                    **{f"{k}_accepted": share([r[k]["judge"] >= t for r in rows if k in r]) for k in KINDS[1:]}}
    summary["sweep"] = sweep
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--sets", default="DRCD_dev.json,cmrc2018_dev.json")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--held-out", action="store_true")
    parser.add_argument("--tag", default="")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--speed", action="store_true", help="only time the judge on -n questions per set")
    args = parser.parse_args()
    for name in args.sets.split(","):
        if args.speed:
            print(json.dumps(speed(name, args.n, args.work, args.seed)), flush=True)
            continue
        result = run(name, args.n, args.work, args.seed, args.held_out)
        out = ROOT / "bench" / "results" / f"judge-{Path(name).stem}{'-' + args.tag if args.tag else ''}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
        print(json.dumps(result["summary"], ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
