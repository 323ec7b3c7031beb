"""The judge: the probability that a sentence answers a question.

A cross-encoder trained here (`python -m rag.judge.train`, see docs/how-it-works.md) on the tuning
sets and near misses built from them (`rag.judge.pairs`). It reads the question with the
sentence, its article title and the two sentences before it, so a sentence about the
same event that does not state the thing asked (another year, another place, the host
instead of the third place) scores low. Its output is calibrated on held-out tuning
questions, so one threshold (`Config.judge_threshold`) means the same on any archive.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Config
from ..hardware import physical_cores
from ..text.script import has_han, to_search_form

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights.safetensors"
CARD = HERE / "judge.json"
_TITLE_CHARS, _BEFORE_CHARS, _SENTENCE_CHARS, _QUESTION_CHARS = 24, 30, 150, 80
PAIRS_PER_RUN = 4  # pairs per forward run of the network, sorted by length


class JudgeMissingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Candidate:
    """A sentence as the judge reads it."""

    sentence: str
    title: str = ""
    before: str = ""  # the text before it, for what "he" or "the team" refers to


def pair_text(question: str, candidate: Candidate, before_chars: int = _BEFORE_CHARS) -> tuple[str, str]:
    """The two segments the judge reads: built the same way in training and in use, where only
    the context before the sentence may be longer (`Judge.before_chars`)."""
    title = to_search_form(candidate.title.strip())[:_TITLE_CHARS]
    before = to_search_form(candidate.before.strip())[-before_chars:]
    sentence = to_search_form(candidate.sentence.strip())[:_SENTENCE_CHARS]
    return f"query: {to_search_form(question.strip())[:_QUESTION_CHARS]}", f"passage: {title}：{before}【{sentence}】"


class Judge:
    """Scores (question, candidate) pairs as calibrated probabilities; loaded once, thread-safe."""

    def __init__(self, base: Path, weights: Path = WEIGHTS, card: Path = CARD, max_tokens: int = Config.judge_max_tokens,
                 before_chars: int = Config.judge_context_chars):
        if not weights.exists() or not card.exists():
            raise JudgeMissingError(f"judge weights not found at {weights}; they ship with the package")
        self.card = json.loads(card.read_text())
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != self.card["sha256"]:
            raise JudgeMissingError(f"{weights} is corrupt (sha256 {digest[:12]}…, expected {self.card['sha256'][:12]}…)")
        if not (base / "config.json").exists():
            raise JudgeMissingError(f"the judge reads with the embedding model at {base}; run `rag models install`")
        self.base, self.weights = base, weights
        self.threads = physical_cores()
        # Never shorter than trained: a long news sentence keeps its end, where the answer often is.
        self.max_length = max(int(self.card["max_length"]), max_tokens)
        # Trained on the last card["context_chars"] (60) of the two sentences before; news names its
        # subject at a paragraph's start (“福州工匠學院”將… / 學院將… / …), so it reads more.
        self.before_chars = before_chars
        self.scale, self.shift = float(self.card["calibration"]["scale"]), float(self.card["calibration"]["shift"])
        self._model = self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        from ..graph import judge_graph, load_graph

        self._model = load_graph(judge_graph(self.base, self.card["sha256"]), self.base, self.weights)
        self._tokenizer = tokenizer(self.base, self.max_length)

    @staticmethod
    def reads(question: str) -> bool:
        """It was trained on Chinese questions only: an English one scores ~0.02 against its own
        answer sentence, so it is not asked about one."""
        return has_han(question)

    def warm(self) -> None:
        """Load the network now, not at the first question."""
        with self._lock:
            if self._model is None:
                self._load()

    def logits(self, question: str, candidates: Sequence[Candidate]) -> np.ndarray:
        if not candidates:
            return np.zeros(0, dtype=np.float32)
        self.warm()
        pairs = [pair_text(question, c, self.before_chars) for c in candidates]
        with self._lock:
            encoded = self._tokenizer.encode_batch(pairs)
            order = np.argsort([len(e.ids) for e in encoded], kind="stable")
            out = np.empty(len(pairs), dtype=np.float32)
            for group in np.array_split(order, max(1, len(pairs) // PAIRS_PER_RUN)):  # similar lengths: less padding
                out[group] = self._model(*padded(self._tokenizer, [encoded[i] for i in group]), self.threads)
            return out

    def score(self, question: str, candidates: Sequence[Candidate]) -> np.ndarray:
        """The probability that each candidate answers the question."""
        return 1.0 / (1.0 + np.exp(-(self.scale * self.logits(question, candidates) + self.shift)))


def tokenizer(base: Path, max_length: int):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.enable_truncation(max_length, strategy="longest_first")
    tok.no_padding()
    return tok


def encode(tok, pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, padded to the longest pair."""
    return padded(tok, tok.encode_batch(list(pairs)))


def padded(tok, encoded) -> tuple[np.ndarray, np.ndarray]:
    """Ids and attention mask of tokenized pairs, padded to the longest."""
    width = max(len(e.ids) for e in encoded)
    pad = tok.token_to_id("<pad>") or 0
    ids = np.full((len(encoded), width), pad, dtype=np.int64)
    mask = np.zeros((len(encoded), width), dtype=np.int64)
    for row, e in enumerate(encoded):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
    return ids, mask


_shared: dict[tuple[Path, int, int, Path], Judge] = {}
_shared_lock = threading.Lock()


def load_judge(base: Path, max_tokens: int = Config.judge_max_tokens, before_chars: int = Config.judge_context_chars,
               folder: Path = HERE) -> Judge:
    """The process's judge for an embedding model folder (its network loaded at the first question),
    from the folder holding its weights and card (the shipped one by default)."""
    key = (base, max_tokens, before_chars, folder)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Judge(base, folder / WEIGHTS.name, folder / CARD.name, max_tokens, before_chars)
        return _shared[key]
