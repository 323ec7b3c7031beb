"""Where may what an answer adds come from? The reader's check (`reader.facts_problem`) looks in the
quoted sentence with its neighbours and the other sentences the judge accepts; this replays the
answers of an `answers.py` run and asks what the stricter source, the quoted sentence and the
accepted ones without the neighbours, would have rejected, right answers and wrong ones.

    .venv/bin/python bench/grounding.py --tag passes     # replays answers-<set>-passes.json; about 5 min

No model is run: each answered question is retrieved and ranked again, its quote located, and both
checks applied to the answer it gave. Results: bench/results/grounding-<tag>.json.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from answers import WORK, prepare  # noqa: E402

from rag.answering.evidence import rank  # noqa: E402
from rag.answering.reader import Verdicts, facts_problem, judged_problem, locate  # noqa: E402
from rag.judge import load_judge  # noqa: E402
from rag.text.script import language_of  # noqa: E402


def replay(name: str, tag: str) -> dict:
    items = json.loads((ROOT / "bench" / "results" / f"answers-{Path(name).stem}-{tag}.json").read_text())["items"]
    bot, _ = prepare(name, WORK, {})
    bot.index(progress=False)
    config, retriever, embedder = bot.config, bot.retriever, bot.embedder
    judge = load_judge(config.embed_model_path, config.judge_max_tokens, config.judge_context_chars, config.judge_dir)
    counts: collections.Counter = collections.Counter()
    for item in items:
        if item["refused"]:
            continue
        question, right = item["question"], "right" if item["correct"] else "wrong"
        passages = retriever.search(question, config.k)
        verdicts = Verdicts(judge, question, rank(question, passages, retriever.index, embedder, config, judge), passages,
                            config.judge_threshold)
        support = locate(item["quote"], passages)
        if support is None or judged_problem(support, verdicts):
            counts[f"{right}, quote not placed"] += 1  # answered through another sentence: not replayed
            continue
        accepted, lang = verdicts.accepted(), language_of(question)
        now = facts_problem(item["answer"], question, dataclasses.replace(support, around=f"{support.around}\n{accepted}",
                                                                          accepted=accepted), lang, config)
        strict = facts_problem(item["answer"], question, dataclasses.replace(support, around=f"{support.sentence}\n{accepted}",
                                                                             accepted=accepted), lang, config)
        counts[f"{right}, {'rejected' if now else 'kept'} now, {'rejected' if strict else 'kept'} without neighbours"] += 1
    return {"set": name, "answers": dict(sorted(counts.items()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="DRCD_dev.json,cmrc2018_dev.json")
    parser.add_argument("--tag", default="passes")
    args = parser.parse_args()
    results = [replay(name, args.tag) for name in args.sets.split(",")]
    for result in results:
        print(json.dumps(result, ensure_ascii=False), flush=True)
    out = ROOT / "bench" / "results" / f"grounding-{args.tag}.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
