"""Hybrid retrieval: BM25 over jieba terms + dense vectors, fused.

The default fusion is a weighted sum of min-max normalised scores with BM25
weighted 2:1 (bench/fusion_sweep.py); reciprocal rank fusion is selectable.

Both sides see the question in search form (simplified, NFKC), so traditional
and simplified questions match the same passages; an English question finds
nothing in BM25 (only documents with a positive BM25 score take part in the
fusion) and is carried by the multilingual dense side.
"""
from __future__ import annotations

from .config import Retrieval
from .embed import Embedder
from .stores import Store
from .text.script import to_search_form
from .text.terms import tokenize
from .types import Chunk, Passage, Scope

FUSIONS = ("rrf", "cc", "dense", "bm25")


class Retriever:
    def __init__(self, index: Store, embedder: Embedder, config: Retrieval):
        self.index = index
        self.embedder = embedder
        self.config = config
        self._trigrams: dict[int, frozenset[str]] = {}  # per candidate, when first collapsed (an index update makes a new Retriever)

    def dense(self, query: str, n: int, within: set[int] | None = None) -> list[tuple[int, float]]:
        vector = self.embedder.encode_queries([query])[0]
        return self.index.dense(vector, n, within)

    def lexical(self, query: str, n: int, within: set[int] | None = None) -> list[tuple[int, float]]:
        return self.index.lexical(tokenize(query), n, within)

    def search(self, question: str, k: int, fusion: str | None = None, scope: Scope | None = None) -> list[Passage]:
        """The k best passages; with a scope, of its articles only, chosen inside both searches (a
        filter after them would leave fewer than k, or none, when the scope is small)."""
        query = to_search_form(question)
        n = max(self.config.candidates, k)
        fusion = fusion or self.config.fusion
        within = None
        if scope:
            from .desk.articles import in_scope

            within = in_scope(self.index, scope)
            if not within:
                return []
        dense = self.dense(query, n, within) if fusion != "bm25" else []
        lexical = self.lexical(query, n, within) if fusion != "dense" else []
        ranked = self.fuse(dense, lexical, fusion)
        chunks = self.index.chunks(i for i, _ in ranked)
        ranked = [(i, s) for i, s in ranked if i in chunks]
        return [self._passage(chunks[i], s) for i, s in self.collapse(ranked, k, chunks)]

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

    def collapse(self, ranked: list[tuple[int, float]], k: int, chunks: dict[int, Chunk]) -> list[tuple[int, float]]:
        """Keep the best of near-identical hits (repeated paragraphs, reprinted stories)."""
        kept: list[tuple[int, float]] = []
        for i, score in ranked:
            if all(_jaccard(self._trigrams_of(i, chunks), self._trigrams_of(j, chunks)) < self.config.dedup_jaccard for j, _ in kept):
                kept.append((i, score))
                if len(kept) == k:
                    break
        return kept

    def _trigrams_of(self, i: int, chunks: dict[int, Chunk]) -> frozenset[str]:
        if i not in self._trigrams:
            if len(self._trigrams) > 100_000:
                self._trigrams.clear()
            self._trigrams[i] = _trigrams(chunks[i].search_text)
        return self._trigrams[i]

    @staticmethod
    def _passage(c: Chunk, score: float) -> Passage:
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
