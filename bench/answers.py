"""Answer accuracy on the public reading-comprehension sets, through the whole product.

    .venv/bin/python bench/answers.py                       # 200 DRCD + 200 CMRC, 1.5B model
    .venv/bin/python bench/answers.py -n 50 --model qwen2.5-coder-0.5b
    .venv/bin/python bench/answers.py --sets DRCD_test.json --paragraphs 120 -n 60   # a quick tuning run

Every paragraph of a set becomes one seed file (its article title as the
headline) under --work, all of them are indexed with `rag index`'s code path
(incrementally: a second run reuses the index), and a seeded
sample of questions is asked with `Assistant.ask`.  An answer is correct when
one of the gold answer strings is contained in it (both in simplified, NFKC
form), as the issue asks; the gold source is the question's own paragraph.
Results: bench/results/answers-<set>.json.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import Assistant  # noqa: E402
from rag.evaluate import Report, grade, normalise  # noqa: E402

SHARED = ROOT.parent / "shared"
SETS = ("DRCD_dev.json", "cmrc2018_dev.json")
WORK = Path(tempfile.gettempdir()) / "rag-answers-bench"


def write_corpus(path: Path, seeds: Path, limit: int = 0) -> list[dict]:
    """One seed file per paragraph (the first `limit` only, if set); returns every question in the rag eval format."""
    items = []
    paragraphs = [(a.get("title", ""), p) for a in json.loads(path.read_text(encoding="utf-8"))["data"] for p in a["paragraphs"]]
    for number, (title, para) in enumerate(paragraphs[:limit] if limit else paragraphs):
        name = f"{path.stem}_{number:04d}.txt"
        (seeds / name).write_text(f"{title}\n\n{para['context']}\n", encoding="utf-8")
        for qa in para["qas"]:
            if not qa["question"].strip():
                continue  # cmrc2018_trial has a question with no text
            answers = sorted({normalise(a["text"]).strip() for a in qa["answers"]} - {""})
            items.append({"id": qa["id"], "question": qa["question"], "answerable": True,
                          "must": [[re.escape(a) for a in answers]], "sources": [name]})
    return items


def prepare(name: str, work: Path, config: dict, limit: int = 0) -> tuple[Assistant, list[dict]]:
    """The set as seed files under work/<set>/ with its index beside them, kept between runs."""
    seeds = work / (Path(name).stem + (f"-{limit}" if limit else "")) / "seeds"
    seeds.mkdir(parents=True, exist_ok=True)
    items = write_corpus(SHARED / "bench" / name, seeds, limit)
    return Assistant(seeds_dir=seeds, index_dir=seeds.parent / "index", **config), items


def run(name: str, n: int, config: dict, work: Path, limit: int = 0, tag: str = "") -> dict:
    bot, items = prepare(name, work, config, limit)
    items = random.Random(0).sample(items, min(n, len(items)))
    t0 = time.time()
    built = bot.index(progress=True)  # incremental: a second run reuses the index
    index_s = time.time() - t0
    bot.warm()
    report, retries, judged = Report(), 0, []
    for item in items:
        answer = bot.ask(item["question"])
        ran_retry = answer.trace.retried
        retried = ran_retry and not answer.refused
        retries += retried
        graded = grade(item, answer)
        report.items.append(graded)
        # whether the retry ran, and the judge's best probability: what a gate on the retry would have seen
        judged.append({"retried": ran_retry, "judged": round(answer.trace.judged, 3)})
        why = f"  ({answer.trace.why[:60]})" if answer.refused else ""
        print(f"{'ok ' if graded.correct else 'BAD'} {'retried ' * retried}{graded.question[:40]} -> {graded.answer[:80]}{why}", flush=True)
    summary = {"set": name, "files": len(list(bot.config.seeds_dir.iterdir())), "chunks": built.chunks,
               "indexed_now": len(built.added) + len(built.changed), "index_s": round(index_s, 1),
               "answered_after_retry": retries, **report.summary()}
    del summary["refusal_accuracy"]  # every sampled question is answerable
    out = ROOT / "bench" / "results" / f"answers-{Path(name).stem}{f'-{limit}' if limit else ''}{f'-{tag}' if tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [{**g.__dict__, **extra} for g, extra in zip(report.items, judged)]
    out.write_text(json.dumps({"summary": summary, "items": rows}, ensure_ascii=False, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200, help="questions per set")
    parser.add_argument("--model", help="answer model (default: the configured one)")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--paragraphs", type=int, default=0, help="only the first N paragraphs of each set (quick tuning runs)")
    parser.add_argument("--tag", default="", help="suffix of the results file (answers-<set>-<tag>.json)")
    parser.add_argument("--work", type=Path, default=WORK,
                        help="seed files and index per set, kept so that a second run skips indexing")
    args = parser.parse_args()
    config = {"llm_model": args.model} if args.model else {}
    for name in args.sets.split(","):
        print(json.dumps(run(name, args.n, config, args.work, args.paragraphs, args.tag), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
