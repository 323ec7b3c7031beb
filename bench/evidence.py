"""How often the model is shown the answer: the gold answer string in the evidence sentences of the
first attempt and of the retry's wider selection (no model involved, ~1 minute per 400 questions).

    .venv/bin/python bench/evidence.py                                   # 200 DRCD dev + 200 CMRC dev questions
    .venv/bin/python bench/evidence.py --sets DRCD_test.json --paragraphs 150 -n 400
    RAG_EVIDENCE_CLAUSE_CHARS=100 .venv/bin/python bench/evidence.py     # any evidence setting, by environment

Uses the corpus and index bench/answers.py builds (same --work folder) and the same seeded
sample of questions. A gold answer longer than 8 characters (CMRC's clause-long ones) counts as
shown when its first 8 characters are. Reading fails without the answer in front of the model,
so this is the ceiling the first attempt reads under.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from answers import SETS, WORK, prepare  # noqa: E402
from output import report  # noqa: E402
from refusals import golds_of  # noqa: E402

from rag.evaluate import normalise  # noqa: E402
from rag.answering.evidence import select  # noqa: E402

_GOLD_CHARS = 8


def measure(name: str, n: int, work: Path, limit: int) -> dict:
    bot, items = prepare(name, work, {"llm_backend": "extractive"}, limit)
    bot.index(progress=True)
    items = random.Random(0).sample(items, min(n, len(items)))
    retriever, counts = bot.retriever, {"in_passages": 0, "in_first_evidence": 0, "in_retry_evidence": 0}
    chars, per_question = 0, []
    for item in items:
        golds = [g[:_GOLD_CHARS] for g in golds_of(item)]

        def shown(texts: list[str]) -> bool:
            text = normalise("\n".join(texts))
            return any(g in text for g in golds)

        passages = retriever.search(item["question"], bot.config.k)
        selection = select(item["question"], passages, retriever.index, bot.embedder, bot.config)
        first, wider = selection.shown, selection.wider
        found = {"in_passages": shown([p.text for p in passages]), "in_first_evidence": shown([e.text for e in first]),
                 "in_retry_evidence": shown([e.text for e in wider])}
        for key, value in found.items():
            counts[key] += value
        chars += sum(len(e.text) for e in first)
        per_question.append({"id": item["id"], **found})
    return {"set": name + (f" (first {limit} paragraphs)" if limit else ""), "questions": len(items),
            **{k: round(v / len(items), 3) for k, v in counts.items()},
            "first_evidence_chars_mean": round(chars / len(items), 1), "items": per_question}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200, help="questions per set")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--paragraphs", type=int, default=0, help="only the first N paragraphs of each set")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    report({"results": [measure(name, args.n, args.work, args.paragraphs) for name in args.sets.split(",")]}, args.out)


if __name__ == "__main__":
    main()
