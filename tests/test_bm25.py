"""The FAISS store's BM25: Okapi scores over term counts that grow and shrink without a recount."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rag.stores.bm25 import B, K1, Bm25

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
        assert bm25.scores(query) == pytest.approx(wanted, rel=1e-5)


def test_adding_and_removing_rows_scores_like_counting_the_result_afresh():
    rng = np.random.default_rng(0)
    vocabulary = [f"词{i}" for i in range(40)]
    docs = [list(rng.choice(vocabulary, rng.integers(1, 12))) for _ in range(60)]
    grown = Bm25.from_tokens(docs[:30]).updated(np.ones(30, bool), docs[30:45])
    kept = rng.random(45) < 0.7
    grown = grown.updated(kept, docs[45:])
    fresh = Bm25.from_tokens([d for d, k in zip(docs[:45], kept) if k] + docs[45:])
    assert len(grown) == len(fresh) == kept.sum() + 15
    for term in vocabulary + ["词不在"]:
        assert grown.scores([term]) == pytest.approx(fresh.scores([term]), rel=1e-6)


def test_saved_postings_are_mapped_and_score_the_same(tmp_path):
    bm25 = Bm25.from_tokens(DOCS)
    bm25.save(tmp_path / "terms")
    loaded = Bm25.load(tmp_path / "terms")
    assert isinstance(loaded.rows, np.memmap)
    assert loaded.scores(["快递员", "工会"]) == pytest.approx(bm25.scores(["快递员", "工会"]))
    (tmp_path / "terms" / "words.json").write_text('["工会"]', encoding="utf-8")
    with pytest.raises(ValueError):
        Bm25.load(tmp_path / "terms")


def test_an_empty_index_scores_nothing():
    assert len(Bm25.empty().scores(["工会"])) == 0
    assert Bm25.from_tokens([[], []]).scores(["工会"]).tolist() == [0.0, 0.0]
