"""Okapi BM25 over chunk × term count matrices, one per store segment, scored together.

bm25s, used before, saves final scores, and every chunk's score depends on the whole archive's
document frequencies and mean length: adding 10 files to a 33k-chunk archive recounted every term
(3.6 s). Counts do not change when chunks are added or removed, so the FAISS store keeps counts
(one matrix per segment, deleted rows masked out) and scores at query time with the same formula
bm25s used (Lucene idf, k1 1.5, b 0.75), which our fusion weights were tuned with.
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

    def __len__(self) -> int:
        return len(self.lengths)

    @classmethod
    def from_tokens(cls, tokens: list[list[str]]) -> "Bm25":
        """Count each token list as one row; new words get ids in the order they are met."""
        vocab: dict[str, int] = {}
        ids = np.fromiter((vocab.setdefault(t, len(vocab)) for terms in tokens for t in terms), np.int64)
        width = max(len(tokens), 1)
        row_of_term = np.repeat(np.arange(len(tokens), dtype=np.int64), [len(terms) for terms in tokens])
        keys, tf = np.unique(ids * width + row_of_term, return_counts=True)  # sorted by word, then row
        indptr = np.concatenate([[0], np.cumsum(np.bincount(keys // width, minlength=len(vocab)))]).astype(np.int64)
        lengths = np.fromiter((len(terms) for terms in tokens), np.int32, len(tokens))
        return cls(list(vocab), indptr, (keys % width).astype(np.int32), tf.astype(np.int32), lengths)

    @classmethod
    def joined(cls, parts: list[tuple["Bm25", np.ndarray]]) -> "Bm25":
        """The rows of each part where its mask is true, renumbered in order, one part after another.
        Numpy over the postings: no term is counted again."""
        vocab: dict[str, int] = {}
        cols, rows, counts, lengths, offset = [], [], [], [], 0
        for terms, kept in parts:
            remap = np.fromiter((vocab.setdefault(w, len(vocab)) for w in terms.words), np.int64, len(terms.words))
            mask = kept[terms.rows] if len(terms.rows) else np.zeros(0, bool)
            renumber = np.cumsum(kept) - 1 + offset
            cols.append(np.repeat(remap, np.diff(terms.indptr))[mask])
            rows.append(renumber[terms.rows[mask]])
            counts.append(np.asarray(terms.counts)[mask])
            lengths.append(np.asarray(terms.lengths)[kept])
            offset += int(kept.sum())
        col = np.concatenate([np.zeros(0, np.int64), *cols])
        order = np.argsort(col, kind="stable")  # earlier parts' rows first within each word, all ascending
        indptr = np.concatenate([[0], np.cumsum(np.bincount(col, minlength=len(vocab)))]).astype(np.int64)
        return cls(list(vocab), indptr, np.concatenate([np.zeros(0, np.int64), *rows])[order].astype(np.int32),
                   np.concatenate([np.zeros(0, np.int32), *counts])[order].astype(np.int32),
                   np.concatenate([np.zeros(0, np.int32), *lengths]).astype(np.int32))

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


def scores(parts: list[tuple[Bm25, np.ndarray]], terms: list[str]) -> np.ndarray:
    """One score per row of the parts, one part after another. Only rows where their part's mask is
    true score and count in the statistics, so an archive kept in segments with deleted rows ranks as
    one built afresh would. A repeated term counts again, as in bm25s."""
    offsets = np.cumsum([0, *(len(t) for t, _ in parts)])
    out = np.zeros(int(offsets[-1]), np.float32)
    alive = sum(int(kept.sum()) for _, kept in parts)
    if not alive:
        return out
    mean = sum(float(np.asarray(t.lengths)[kept].sum()) for t, kept in parts) / alive or 1.0
    for term in terms:
        found = [p for (t, kept), offset in zip(parts, offsets) if (p := _postings(t, kept, term, int(offset))) is not None]
        if not found:
            continue
        rows, tf, lengths = (np.concatenate(column) for column in zip(*found))
        if len(rows):
            idf = math.log(1 + (alive - len(rows) + 0.5) / (len(rows) + 0.5))
            out[rows] += idf * tf / (K1 * (1 - B + B * lengths / mean) + tf)  # a word's rows are distinct
    return out


def _postings(terms: Bm25, kept: np.ndarray, word: str, offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A word's live rows in one part (shifted by the part's offset), their counts and lengths."""
    j = terms.vocab.get(word)
    if j is None:
        return None
    start, end = int(terms.indptr[j]), int(terms.indptr[j + 1])
    rows = np.asarray(terms.rows[start:end])
    live = kept[rows]
    return offset + rows[live].astype(np.int64), np.asarray(terms.counts[start:end])[live].astype(np.float32), \
        np.asarray(terms.lengths)[rows[live]].astype(np.float32)
