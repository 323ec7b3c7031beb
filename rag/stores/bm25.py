"""Okapi BM25 over a chunk × term count matrix that grows by appending rows.

bm25s, used before, saves final scores, and every chunk's score depends on the whole archive's
document frequencies and mean length: adding 10 files to a 33k-chunk archive recounted every term
(3.6 s). Counts do not change when chunks are added or removed, so the FAISS store keeps counts and
scores at query time with the same formula bm25s used (Lucene idf, k1 1.5, b 0.75), which our fusion
weights were tuned with.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

K1, B = 1.5, 0.75
_FILES = ("words.json", "indptr.npy", "rows.npy", "counts.npy", "lengths.npy")


class Bm25:
    """Postings by word (CSC layout): word j's chunks are `rows[indptr[j]:indptr[j+1]]`, ascending."""

    def __init__(self, words: list[str], indptr: np.ndarray, rows: np.ndarray, counts: np.ndarray, lengths: np.ndarray):
        self.words = words
        self.vocab = {word: i for i, word in enumerate(words)}
        self.indptr, self.rows, self.counts, self.lengths = indptr, rows, counts, lengths
        self._norm: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    @classmethod
    def empty(cls) -> "Bm25":
        return cls([], np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32))

    @classmethod
    def from_tokens(cls, tokens: list[list[str]]) -> "Bm25":
        return cls.empty().updated(np.zeros(0, bool), tokens)

    def scores(self, terms: list[str]) -> np.ndarray:
        """One score per chunk; a repeated term counts again, as in bm25s."""
        n = len(self)
        out = np.zeros(n, np.float32)
        if self._norm is None and n:
            self._norm = (K1 * (1 - B + B * self.lengths / (self.lengths.mean() or 1))).astype(np.float32)
        for term in terms:
            j = self.vocab.get(term)
            if j is None:
                continue
            start, end = int(self.indptr[j]), int(self.indptr[j + 1])
            if start == end:
                continue
            rows, tf = self.rows[start:end], self.counts[start:end].astype(np.float32)
            idf = math.log(1 + (n - (end - start) + 0.5) / (end - start + 0.5))
            out[rows] += idf * tf / (self._norm[rows] + tf)  # a word's rows are distinct
        return out

    def updated(self, kept: np.ndarray, tokens: list[list[str]]) -> "Bm25":
        """The rows where `kept` is true, renumbered in order, then one row per new token list.
        Numpy over the postings: no term of the kept chunks is counted again."""
        vocab = dict(self.vocab)  # new words get the next ids, in the order they are met
        ids = np.fromiter((vocab.setdefault(t, len(vocab)) for terms in tokens for t in terms), np.int64)
        n_old, n_new, n_words = int(kept.sum()), len(tokens), len(vocab)
        width = max(n_new, 1)
        row_of_term = np.repeat(np.arange(n_new, dtype=np.int64), [len(terms) for terms in tokens])
        keys, tf = np.unique(ids * width + row_of_term, return_counts=True)  # sorted by word, then row
        new_cols, new_rows = keys // width, keys % width + n_old
        old_cols = np.repeat(np.arange(len(self.words), dtype=np.int64), np.diff(self.indptr))
        mask = kept[self.rows] if len(self.rows) else np.zeros(0, bool)
        renumber = np.cumsum(kept) - 1
        cols = np.concatenate([old_cols[mask], new_cols])
        order = np.argsort(cols, kind="stable")  # old rows before new ones within each word, both ascending
        rows = np.concatenate([renumber[self.rows[mask]], new_rows])[order].astype(np.int32)
        counts = np.concatenate([self.counts[mask], tf])[order].astype(np.int32)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=n_words))]).astype(np.int64)
        lengths = np.concatenate([self.lengths[kept], [len(terms) for terms in tokens]]).astype(np.int32)
        return Bm25(list(vocab), indptr, rows, counts, lengths)

    def save(self, folder: Path) -> list[Path]:
        folder.mkdir()
        (folder / "words.json").write_text(json.dumps(self.words, ensure_ascii=False), encoding="utf-8")
        for name, array in zip(_FILES[1:], (self.indptr, self.rows, self.counts, self.lengths)):
            np.save(folder / name, array)
        return [folder / name for name in _FILES]

    @classmethod
    def load(cls, folder: Path) -> "Bm25":
        """Postings are mapped, so opening a large archive reads only the word list."""
        words = json.loads((folder / "words.json").read_text(encoding="utf-8"))
        indptr, rows, counts, lengths = (np.load(folder / name, mmap_mode="r") for name in _FILES[1:])
        if not (len(indptr) == len(words) + 1 and len(rows) == len(counts) == int(indptr[-1])):
            raise ValueError("postings and word list differ in length")
        return cls(words, indptr, rows, counts, lengths)
