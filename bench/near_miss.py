"""Near misses built like real news: does the assistant answer when the archive holds the answer,
and refuse when it holds only the same event without it?

    .venv/bin/python bench/near_miss.py                          # 50 questions each of DRCD dev and CMRC dev
    .venv/bin/python bench/near_miss.py -n 30 --sets DRCD_test.json --tag tuning

Per sampled question, over the corpus bench/answers.py builds (one seed file per paragraph,
its article title as headline; the same --work folder, so the index is reused), three kinds:

- with_gold: the question as is (right = the gold answer; refused and wrong counted);
- same_article: every passage of the gold paragraph, and any passage holding a gold answer,
  removed from retrieval, so the article's other paragraphs (DRCD) or the paragraphs retrieval
  ranks next (CMRC's articles are one paragraph) are what the assistant sees. Right = refused;
- changed_constraint: a year, number, place, organisation or person of the question that the
  answer sentence states, replaced by another of the same kind the archive mentions elsewhere
  (`rag.judge.pairs.changed_question`), asked over the whole archive. Right = refused; an
  answer is counted wrong, and `gave_original` says when it was the unchanged question's answer.

With --sets seeds_dev, the same three kinds over the repository's seeds and its vendored
tests/data/seeds_dev.jsonl: same_article removes the passages holding the answer (the seed files'
other passages of the article stay), and changed_constraint swaps a constraint that the answer's
sentence states for another of its kind from the same seed file.

Built mechanically (seeded sample, no hand-picked cases). Results: bench/results/near_miss-<set>[-tag].json.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from answers import SHARED, WORK, prepare  # noqa: E402

from rag import Assistant  # noqa: E402
from rag.text.sentences import split_sentences  # noqa: E402
from rag.loaders.decode import decode  # noqa: E402
from rag.evaluate import grade, load_items, normalise  # noqa: E402
from rag.judge.pairs import ConstraintPool, change_constraint, changed_question, read_set  # noqa: E402

KINDS = ("with_gold", "same_article", "changed_constraint")


def row(answer, correct: bool) -> dict:
    return {"answer": answer.text, "refused": answer.refused, "correct": correct, "retried": answer.trace.retried,
            "judged": round(answer.trace.judged, 3),
            "quote": answer.trace.quote, "why": answer.trace.why,
            "seconds": round(answer.trace.seconds, 2),
            "sources": [c.source for c in answer.citations]}


def run(name: str, n: int, work: Path, config: dict, seed: int) -> dict:
    bot, items = prepare(name, work, config)
    corpus = read_set(SHARED / "bench" / name)
    questions = {q.id: q for q in corpus.questions}
    pool, rng = ConstraintPool(corpus), random.Random(seed)
    items = [i for i in items if i["id"] in questions]
    items = random.Random(seed).sample(items, min(n, len(items)))
    bot.index(progress=True)
    bot.warm()
    search = bot.retriever.search
    rows = []
    for item in items:
        golds = [normalise(g.replace("\\", "")) for g in item["must"][0]]
        holds = lambda p: any(g in normalise(p.text) for g in golds)  # noqa: E731
        gold_file = item["sources"][0]
        entry = {"id": item["id"], "question": item["question"], "gold": golds}
        bot.retriever.search = search
        answer = bot.ask(item["question"])
        entry["with_gold"] = row(answer, grade(item, answer).correct)
        bot.retriever.search = lambda q, k, fusion=None, scope=None: [
            p for p in search(q, 3 * k, fusion, scope) if p.source != gold_file and not holds(p)][:k]
        answer = bot.ask(item["question"])
        entry["same_article"] = row(answer, answer.refused)
        bot.retriever.search = search
        changed = changed_question(corpus, pool, questions[item["id"]], rng)
        if changed:
            answer = bot.ask(changed)
            entry["changed_constraint"] = {"question": changed, **row(answer, answer.refused),
                                           "gave_original": not answer.refused and any(g in normalise(answer.text) for g in golds)}
        rows.append(entry)
        print(" ".join(f"{k[:4]}={'ok' if entry[k]['correct'] else ('ref' if entry[k]['refused'] else 'BAD')}"
                       for k in KINDS if k in entry), item["question"][:30], flush=True)
    return {"summary": summarise(name, rows), "items": rows}


def summarise(name: str, rows: list[dict]) -> dict:
    summary = {"set": name, "questions": len(rows)}
    for kind in KINDS:
        done = [r[kind] for r in rows if kind in r]
        if not done:
            continue
        right = sum(r["correct"] for r in done)
        refused = sum(r["refused"] for r in done)
        summary[kind] = {"questions": len(done), "right": round(right / len(done), 3), "refused": round(refused / len(done), 3),
                         "wrong": round((len(done) - right - (refused if kind == "with_gold" else 0)) / len(done), 3)}
    summary.setdefault("changed_constraint", {})["gave_original"] = sum(r["changed_constraint"]["gave_original"] for r in rows if "changed_constraint" in r)
    seconds = sorted(r[k]["seconds"] for r in rows for k in KINDS if k in r)
    summary["seconds_median"], summary["seconds_p95"] = seconds[len(seconds) // 2], seconds[int(0.95 * (len(seconds) - 1))]
    return summary


def run_seeds(work: Path, seed: int) -> dict:
    """The three kinds over the seeds and seeds_dev's answerable questions."""
    seeds = ROOT / "seeds"
    bot = Assistant(seeds_dir=seeds, index_dir=work / "seeds-index")
    files = sorted(seeds.glob("*.txt"))
    pool = ConstraintPool([(n, s) for n, f in enumerate(files) for s in decode(f).split("。")])
    items = [i for i in load_items(ROOT / "tests" / "data" / "seeds_dev.jsonl") if i.get("answerable", True)]
    bot.index(progress=True)
    bot.warm()
    search, rng, rows = bot.retriever.search, random.Random(seed), []
    for item in items:
        patterns = [p for group in item["must"] for p in group]
        holds = lambda text: any(re.search(p, normalise(text)) for p in patterns)  # noqa: E731
        entry = {"id": item["id"], "question": item["question"]}
        bot.retriever.search = search
        answer = bot.ask(item["question"])
        entry["with_gold"] = row(answer, grade(item, answer).correct)
        bot.retriever.search = lambda q, k, fusion=None, scope=None: [p for p in search(q, 3 * k, fusion, scope) if not holds(p.text)][:k]
        answer = bot.ask(item["question"])
        entry["same_article"] = row(answer, answer.refused)
        bot.retriever.search = search
        gold = next((p for p in search(item["question"], 3 * bot.config.k) if holds(p.text)), None)
        sentences = [gold.text[a:b] for a, b in split_sentences(gold.text)] if gold else []
        at = next((i for i, t in enumerate(sentences) if holds(t)), None)
        if at is not None:
            context = f"{gold.title}{sentences[at - 1] if at else ''}{sentences[at]}"
            answers = [m.group() for p in patterns for m in [re.search(p, normalise(sentences[at]))] if m]
            changed = change_constraint(item["question"], context, answers, [f.name for f in files].index(gold.source), pool, rng)
            if changed:
                answer = bot.ask(changed)
                entry["changed_constraint"] = {"question": changed, **row(answer, answer.refused),
                                               "gave_original": not answer.refused and holds(answer.text)}
        rows.append(entry)
        print(" ".join(f"{k[:4]}={'ok' if entry[k]['correct'] else ('ref' if entry[k]['refused'] else 'BAD')}"
                       for k in KINDS if k in entry), item["question"][:30], flush=True)
    return {"summary": summarise("seeds_dev", rows), "items": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=50, help="questions per set")
    parser.add_argument("--sets", default="DRCD_dev.json,cmrc2018_dev.json")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--tag", default="", help="suffix of the results file")
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    for name in args.sets.split(","):
        result = run_seeds(args.work, args.seed) if name == "seeds_dev" else run(name, args.n, args.work, {}, args.seed)
        out = ROOT / "bench" / "results" / f"near_miss-{Path(name).stem}{'-' + args.tag if args.tag else ''}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
        print(json.dumps(result["summary"], ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
