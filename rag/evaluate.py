"""Grade answers against a JSONL question set (the format of shared/qa/seeds_dev.jsonl).

An answerable item is correct when every `must` group has a pattern that matches
the simplified, NFKC-normalised answer; an unanswerable one when it is refused. An item
may also name `must_not` groups (an answer a user marked wrong: `rag feedback export`):
an answer matching every pattern of one of them is wrong. `answerable: null` (not known
whether the archive holds the answer) passes a refusal or any answer that is not ruled out.
"""
from __future__ import annotations

import json
import re
import statistics
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .text.script import in_script
from .types import Answer


@dataclass
class Graded:
    id: str
    question: str
    answerable: bool | None
    correct: bool
    refused: bool
    gold_cited: bool
    ttft: float
    seconds: float
    answer: str
    quote: str = ""  # what the reader quoted ...
    why: str = ""  # ... and why it refused, or why the attempts before the answer were not used


@dataclass
class Report:
    items: list[Graded] = field(default_factory=list)

    def summary(self) -> dict:
        answerable = [g for g in self.items if g.answerable]
        unanswerable = [g for g in self.items if g.answerable is False]
        unknown = [g for g in self.items if g.answerable is None]
        share = lambda xs, attr: round(sum(getattr(x, attr) for x in xs) / len(xs), 3) if xs else None  # noqa: E731
        return {
            "questions": len(self.items),
            "answer_accuracy": share(answerable, "correct"),
            "refusal_accuracy": share(unanswerable, "refused"),
            **({"to_fix_accuracy": share(unknown, "correct")} if unknown else {}),
            "gold_source_cited": share(answerable, "gold_cited"),
            "false_refusals": sum(g.refused for g in answerable),
            "ttft_median_s": round(statistics.median(g.ttft for g in self.items), 2) if self.items else None,
            "latency_median_s": round(statistics.median(g.seconds for g in self.items), 2) if self.items else None,
            "latency_p95_s": round(sorted(g.seconds for g in self.items)[int(0.95 * (len(self.items) - 1))], 2) if self.items else None,
        }


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", in_script(text, "zh-Hans"))


def grade(item: dict, answer: Answer) -> Graded:
    text = normalise(answer.text)
    answerable = item.get("answerable", True)
    ruled_out = not answer.refused and any(all(re.search(p, text) for p in group) for group in item.get("must_not", []))
    if answerable is None:
        correct = not ruled_out
    elif answerable:
        correct = not answer.refused and not ruled_out and all(any(re.search(p, text) for p in group) for group in item.get("must", []))
    else:
        correct = answer.refused
    gold = set(item.get("sources", []))
    return Graded(
        id=str(item.get("id", "")),
        question=item["question"],
        answerable=answerable,
        correct=correct,
        refused=answer.refused,
        gold_cited=bool(gold & {c.source for c in answer.citations}),
        ttft=answer.trace.ttft,
        seconds=answer.trace.seconds,
        answer=answer.text,
        quote=answer.trace.quote,
        why=answer.trace.why,
    )


def load_items(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSONL question set ({exc})") from exc
