"""Train the judge on the tuning sets, on two CPU cores, resumably.

    .venv/bin/python -m rag.judge.train                 # the shipped weights, ~2 h on 2 cores; resumes after a stop
    .venv/bin/python -m rag.judge.train --recipe first --out build/judge-first   # the first weights, ~1 h (docs/how-it-works.md)
    .venv/bin/python -m rag.judge.train --export-only   # write the weights from the last checkpoint

Data: ../shared/bench/DRCD_test.json and cmrc2018_trial.json only (the dev sets stay for
measurement). Per question: the answer sentence (positive), near misses from its paragraph
and its article, and the question with a changed constraint against the answer sentence
(`rag.judge.pairs`). Questions of every tenth paragraph are held out to calibrate the
output (Platt scaling) and to report how well it separates. Seeded: the same command
gives the same pairs, order and weights.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ROOT, load_config
from . import CARD, WEIGHTS, Candidate, encode, pair_text, tokenizer
from .pairs import ConstraintPool, Neighbours, changed_questions, negatives, read_set

log = logging.getLogger("rag.judge.train")
SETS = (ROOT.parent / "shared" / "bench" / "DRCD_test.json", ROOT.parent / "shared" / "bench" / "cmrc2018_trial.json")


@dataclass(frozen=True)
class Recipe:
    """How pairs are read and which near misses are made."""

    max_length: int
    context_chars: int
    two_before: bool  # the context is the two sentences before (as answering reads it), else the one
    after_answer: bool  # the sentence after the answer as a near miss
    changed: int  # changed-constraint questions per question, at most
    epochs: float


RECIPES = {
    # The shipped weights (rag/judge), trained as answering reads (256 tokens, the two sentences
    # before), with the sentence after the answer and two changed constraints as near misses:
    # 27,947 pairs, 3,494 steps of 16, 1 h 56 min on 2 cores.
    "answering": Recipe(256, 60, True, True, 2, 2.0),
    # The first weights: 128 tokens, 30 characters of one sentence before; 24,995 pairs, 2,500 steps.
    "first": Recipe(128, 30, False, False, 1, 1.6),
}


def candidate(corpus, i: int, recipe: Recipe) -> Candidate:
    s = corpus.sentences[i]
    return Candidate(s.text, s.title, s.context if recipe.two_before else s.before)


def examples(paths, seed: int, recipe: Recipe = RECIPES["answering"]) -> tuple[list[tuple], list[tuple]]:
    """(question, candidate, label, kind) rows for training and for the held-out calibration."""
    rng = random.Random(seed)
    train, held = [], []
    for path in paths:
        corpus = read_set(path)
        neighbours, pool = Neighbours(corpus), ConstraintPool(corpus)
        for q in corpus.questions:
            rows = [(q.text, candidate(corpus, q.gold[0], recipe), 1.0, "answer")]
            rows += [(q.text, candidate(corpus, i, recipe), 0.0, kind)
                     for i, kind in negatives(corpus, neighbours, q, rng, after_answer=recipe.after_answer)]
            rows += [(changed, candidate(corpus, q.gold[0], recipe), 0.0, "changed_constraint")
                     for changed in changed_questions(corpus, pool, q, rng, recipe.changed)]
            (held if q.paragraph % 10 == 0 else train).extend(rows)
        log.info("%s: %d questions", corpus.name, len(corpus.questions))
    return train, held


def batches(rows: list[tuple], size: int, rng: random.Random) -> list[list[tuple]]:
    """Shuffled batches of similar lengths (less padding): sort within windows of 50 batches."""
    rows = rows[:]
    rng.shuffle(rows)
    out = []
    for w in range(0, len(rows), size * 50):
        window = sorted(rows[w : w + size * 50], key=lambda r: len(r[1].sentence) + len(r[0]))
        out += [window[i : i + size] for i in range(0, len(window), size)]
    rng.shuffle(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", type=Path, default=list(SETS))
    parser.add_argument("--work", type=Path, help="checkpoints and logs (default: build/judge-<recipe>)")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="answering", help="pairs and near misses (default: the shipped weights')")
    parser.add_argument("--epochs", type=float, help="default: the recipe's")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--trained-layers", type=int, default=6)
    parser.add_argument("--max-length", type=int, help="default: the recipe's")
    parser.add_argument("--context-chars", type=int, help="default: the recipe's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--save-every", type=int, default=100, help="steps between checkpoints")
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--out", type=Path, default=WEIGHTS.parent, help="where the weights and card go (Config.judge_dir reads them)")
    args = parser.parse_args()
    recipe = RECIPES[args.recipe]
    args.work = args.work or ROOT / "build" / f"judge-{args.recipe}"  # a checkpoint resumes only its own recipe
    args.epochs = args.epochs or recipe.epochs
    args.max_length = args.max_length or recipe.max_length
    args.context_chars = args.context_chars or recipe.context_chars
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch

    from ..hardware import physical_cores
    from .model import CrossEncoder

    torch.set_num_threads(args.threads or physical_cores())
    torch.manual_seed(args.seed)
    base = load_config().embed_model_path
    tok = tokenizer(base, args.max_length)
    train, held = examples(args.sets, args.seed, recipe)
    log.info("pairs: %d training (%d positive), %d held out", len(train), sum(r[2] for r in train), len(held))
    plan = batches(train, args.batch, random.Random(args.seed))
    plans = {0: plan}
    total = int(len(plan) * args.epochs)

    model = CrossEncoder(base, args.trained_layers)
    params = [p for p in model.parameters() if p.requires_grad]
    head = [p for n, p in model.named_parameters() if n.startswith("head.")]
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    optimiser = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": head, "lr": args.lr * 20}], weight_decay=0.01)
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    args.work.mkdir(parents=True, exist_ok=True)
    checkpoint = args.work / "checkpoint.pt"
    step = 0
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        model.load_trained(saved["trained"])
        optimiser.load_state_dict(saved["optimiser"])
        schedule.load_state_dict(saved["schedule"])
        step = saved["step"]
        log.info("resumed at step %d of %d", step, total)

    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    started, first, recent = time.time(), step, []
    while step < total and not args.export_only:
        epoch = step // len(plan)
        if epoch not in plans:
            plans = {epoch: batches(train, args.batch, random.Random(args.seed + epoch))}
        batch = plans[epoch][step % len(plan)]
        ids, mask = encode(tok, [pair_text(q, c, args.context_chars) for q, c, _, _ in batch])
        labels = torch.tensor([r[2] for r in batch])
        loss = loss_fn(model(torch.from_numpy(ids), torch.from_numpy(mask)), labels)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        schedule.step()
        step += 1
        recent = (recent + [loss.item()])[-100:]
        if step % 20 == 0:
            rate = (step - first) / max(1e-9, time.time() - started)
            log.info("step %d/%d loss %.4f (%.2f steps/s)", step, total, sum(recent) / len(recent), rate)
        if step % args.save_every == 0 or step == total:
            partial = checkpoint.with_suffix(".partial")
            torch.save({"trained": model.trained_state(), "optimiser": optimiser.state_dict(),
                        "schedule": schedule.state_dict(), "step": step}, partial)
            partial.replace(checkpoint)
    export(model, tok, held, args, step)


def held_out_logits(model, tok, held: list[tuple], context_chars: int) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(held), 64):
            ids, mask = encode(tok, [pair_text(q, c, context_chars) for q, c, _, _ in held[i : i + 64]])
            out.append(model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy())
    return np.concatenate(out)


def platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Scale and shift of the logit that minimise log loss on the held-out pairs (Newton's method)."""
    a, b = 1.0, 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-(a * logits + b)))
        g = np.array([np.sum((p - labels) * logits), np.sum(p - labels)])
        w = p * (1 - p)
        h = np.array([[np.sum(w * logits * logits), np.sum(w * logits)], [np.sum(w * logits), np.sum(w)]]) + 1e-6 * np.eye(2)
        a, b = np.array([a, b]) - np.linalg.solve(h, g)
    return float(a), float(b)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels == 1
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / max(1, pos.sum() * (~pos).sum()))


def export(model, tok, held: list[tuple], args, step: int) -> None:
    """Calibrate on the held-out pairs, report, and write the shipped weights (fp16) and card."""
    from safetensors.torch import save_file

    logits = held_out_logits(model, tok, held, args.context_chars)
    labels = np.array([r[2] for r in held])
    scale, shift = platt(logits, labels)
    probs = 1 / (1 + np.exp(-(scale * logits + shift)))
    kinds = {}
    for kind in sorted({r[3] for r in held}):
        rows = np.array([r[3] == kind for r in held])
        kinds[kind] = {"pairs": int(rows.sum()), "mean_probability": round(float(probs[rows].mean()), 3),
                       "judged_answering_at_0.5": round(float((probs[rows] >= 0.5).mean()), 3)}
        if kind != "answer":
            both = rows | (labels == 1)
            kinds[kind]["auc_vs_answers"] = round(auc(logits[both], labels[both]), 4)
    state = {k: v.half().contiguous() for k, v in model.trained_state().items()}
    args.out.mkdir(parents=True, exist_ok=True)
    weights, card_path = args.out / WEIGHTS.name, args.out / CARD.name
    save_file(state, str(weights))
    card = {
        "base": "multilingual-e5-small (rag models install)", "trained_layers": args.trained_layers,
        "recipe": args.recipe, "max_length": args.max_length, "context_chars": args.context_chars, "steps": step, "batch": args.batch, "lr": args.lr, "epochs": args.epochs,
        "seed": args.seed, "sets": [p.name for p in args.sets],
        "calibration": {"scale": round(scale, 5), "shift": round(shift, 5), "pairs": len(held)},
        "held_out": {"auc": round(auc(logits, labels), 4), "kinds": kinds},
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
    }
    card_path.write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n")
    log.info("wrote %s (%.1f MB) and %s: %s", weights, weights.stat().st_size / 1e6, card_path, json.dumps(card["held_out"]))


if __name__ == "__main__":
    main()
