"""Hybrid retrieval: BM25 over jieba terms + dense vectors, fused.

The default fusion is a weighted sum of min-max normalised scores with BM25
weighted 2:1 (bench/fusion_sweep.py); reciprocal rank fusion is selectable.

Both sides see the question in search form (simplified, NFKC), so traditional
and simplified questions match the same passages; an English question finds
nothing in BM25 (only documents with a positive BM25 score take part in the
fusion) and is carried by the multilingual dense side.
"""
from __future__ import annotations

import logging

import numpy as np

from .clean import to_search_form
from .config import Config
from .embed import Embedder
from .index import VectorIndex, tokenize
from .types import Passage

log = logging.getLogger(__name__)

FUSIONS = ("rrf", "cc", "dense", "bm25")


class Retriever:
    def __init__(self, index: VectorIndex, embedder: Embedder, config: Config):
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self.index = index
        self.embedder = embedder
        self.config = config
        self.bm25 = bm25s.BM25()
        if index.tokens:
            self.bm25.index(index.tokens, show_progress=False)
        self._trigrams = [_trigrams(c.search_text) for c in index.chunks]

    def dense(self, query: str, n: int) -> list[tuple[int, float]]:
        vector = self.embedder.encode_queries([query])[0]
        return self.index.search(vector, n)

    def lexical(self, query: str, n: int) -> list[tuple[int, float]]:
        vocab = self.bm25.vocab_dict if self.index.tokens else {}
        terms = [t for t in tokenize(query) if t in vocab]
        if not terms:
            return []
        scores = self.bm25.get_scores(terms)
        top = np.argsort(-scores)[:n]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    def search(self, question: str, k: int, fusion: str | None = None) -> list[Passage]:
        query = to_search_form(question)
        n = max(self.config.candidates, k)
        fusion = fusion or self.config.fusion
        dense = self.dense(query, n) if fusion != "bm25" else []
        lexical = self.lexical(query, n) if fusion != "dense" else []
        return [self._passage(i, s) for i, s in self.collapse(self.fuse(dense, lexical, fusion), k)]

    def fuse(self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]], fusion: str) -> list[tuple[int, float]]:
        c = self.config
        if fusion == "dense":
            return dense
        if fusion == "bm25":
            return lexical
        if fusion == "rrf":
            return rrf([dense, lexical], [c.dense_weight, c.bm25_weight], c.rrf_k)
        if fusion == "cc":
            return convex([dense, lexical], [c.dense_weight, c.bm25_weight])
        raise ValueError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")

    def collapse(self, ranked: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
        """Keep the best of near-identical hits (repeated paragraphs, reprinted stories)."""
        kept: list[tuple[int, float]] = []
        for i, score in ranked:
            if all(_jaccard(self._trigrams[i], self._trigrams[j]) < self.config.dedup_jaccard for j, _ in kept):
                kept.append((i, score))
                if len(kept) == k:
                    break
        return kept

    def _passage(self, i: int, score: float) -> Passage:
        c = self.index.chunks[i]
        return Passage(text=c.text, source=c.source, title=c.title, score=score, start=c.start, end=c.end, chunk_id=c.id, article=c.article, page=c.page)


def rrf(rankings: list[list[tuple[int, float]]], weights: list[float], k: int) -> list[tuple[int, float]]:
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, (i, _) in enumerate(ranking):
            fused[i] = fused.get(i, 0.0) + weight / (k + rank + 1)
    return sorted(fused.items(), key=lambda item: -item[1])


def convex(rankings: list[list[tuple[int, float]]], weights: list[float]) -> list[tuple[int, float]]:
    """Weighted sum of min-max normalised scores; a document absent from a list scores 0 there."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        if not ranking:
            continue
        scores = [s for _, s in ranking]
        low, span = min(scores), (max(scores) - min(scores)) or 1.0
        for i, s in ranking:
            fused[i] = fused.get(i, 0.0) + weight * (s - low) / span
    return sorted(fused.items(), key=lambda item: -item[1])


def _trigrams(text: str) -> frozenset[str]:
    text = "".join(text.split())
    return frozenset(text[i : i + 3] for i in range(max(1, len(text) - 2)))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
