"""The FAISS store's BM25: Okapi scores over segments of term counts, with rows deleted and added without a recount."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rag.stores.bm25 import B, K1, Bm25, scores


def _all(bm25: Bm25) -> list[tuple[Bm25, np.ndarray]]:
    return [(bm25, np.ones(len(bm25), bool))]

DOCS = [["工会", "成立", "工会"], ["快递员", "加入", "工会"], ["台北", "首都"], ["快递员", "外卖", "配送员", "快递员"]]


def test_scores_are_okapi_bm25_with_lucene_idf():
    bm25 = Bm25.from_tokens(DOCS)
    mean = sum(map(len, DOCS)) / len(DOCS)

    def expected(doc: list[str], term: str) -> float:
        df = sum(term in d for d in DOCS)
        tf = doc.count(term)
        idf = math.log(1 + (len(DOCS) - df + 0.5) / (df + 0.5))
        return idf * tf / (tf + K1 * (1 - B + B * len(doc) / mean))

    for query in (["工会"], ["快递员", "工会"], ["快递员", "快递员"], ["首都", "没有的词"]):
        wanted = [sum(expected(doc, t) for t in query) for doc in DOCS]
        assert scores(_all(bm25), query) == pytest.approx(wanted, rel=1e-5)


def test_segments_with_deleted_rows_score_like_counting_the_live_rows_afresh():
    rng = np.random.default_rng(0)
    vocabulary = [f"词{i}" for i in range(40)]
    docs = [list(rng.choice(vocabulary, rng.integers(1, 12))) for _ in range(60)]
    parts = [(Bm25.from_tokens(docs[a:b]), rng.random(b - a) < 0.7) for a, b in ((0, 30), (30, 45), (45, 60))]
    live = [d for (a, b), (_, kept) in zip(((0, 30), (30, 45), (45, 60)), parts) for d, k in zip(docs[a:b], kept) if k]
    fresh = Bm25.from_tokens(live)
    joined = Bm25.joined(parts)
    alive = np.concatenate([kept for _, kept in parts])
    assert len(joined) == len(fresh) == alive.sum()
    for term in vocabulary + ["词不在"]:
        wanted = scores(_all(fresh), [term])
        assert scores(parts, [term])[alive] == pytest.approx(wanted, rel=1e-6)  # masked rows do not count
        assert not scores(parts, [term])[~alive].any()  # and do not score
        assert scores(_all(joined), [term]) == pytest.approx(wanted, rel=1e-6)  # merged, the same


def test_saved_postings_are_mapped_and_score_the_same(tmp_path):
    bm25 = Bm25.from_tokens(DOCS)
    bm25.save(tmp_path / "terms")
    loaded = Bm25.load(tmp_path / "terms")
    assert isinstance(loaded.rows, np.memmap)
    assert scores(_all(loaded), ["快递员", "工会"]) == pytest.approx(scores(_all(bm25), ["快递员", "工会"]))
    (tmp_path / "terms" / "words.json").write_text('["工会"]', encoding="utf-8")
    with pytest.raises(ValueError):
        Bm25.load(tmp_path / "terms")


def test_an_empty_index_scores_nothing():
    assert len(scores([], ["工会"])) == 0 and len(scores(_all(Bm25.from_tokens([])), ["工会"])) == 0
    assert scores(_all(Bm25.from_tokens([[], []])), ["工会"]).tolist() == [0.0, 0.0]
