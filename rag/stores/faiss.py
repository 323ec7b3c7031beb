"""The embedded default: chunks, vectors and FAISS indexes in segment folders on disk.

Layout: `index/CURRENT` names a generation folder, whose manifest lists the segments (`seg-*`
folders, see segment.py) that make the store and whose `deleted.npy` holds the ids of chunks
removed since they were written. A build writes a segment for the files it adds, then a new
generation, then swaps CURRENT with `os.replace`, so readers never see a half-written index; the
segments already on disk are neither rewritten nor hashed again. Compaction merges segments into
one (dropping deleted rows) when there are more than `max_segments`, when half the rows are
deleted, or when asked (`rag index --compact`); it is a write like any other, as atomic.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Collection, Iterable, Iterator

import numpy as np

from ..config import Storing
from .base import FORMAT_VERSION, CorruptIndexError, IndexMissingError, Manifest, StaleIndexError, Update, repair_hint
from .bm25 import Bm25, scores
from .segment import Segment, make_faiss, read, sha256, verify
from ..types import Chunk

log = logging.getLogger(__name__)

__all__ = ["FaissStore", "make_faiss"]

_DELETED = "deleted.npy"


class FaissStore:
    def __init__(self, manifest: Manifest, segments: list[Segment], deleted: np.ndarray | None = None,
                 index_dir: Path | None = None, config: Storing | None = None, legacy: bool = False):
        self.manifest = manifest
        self.segments = segments
        self.offsets = np.cumsum([0, *(len(s) for s in segments)]).astype(np.int64)
        self.alive = np.ones(int(self.offsets[-1]), bool)
        self.alive[np.asarray(deleted if deleted is not None else [], dtype=np.int64)] = False
        self.chunk_list = [c for s in segments for c in s.chunks]  # by id, deleted ones included
        self.index_dir = index_dir
        self.config = config or Storing()
        self.legacy = legacy  # opened from a generation written before segments: the next write rewrites it

    @classmethod
    def in_memory(cls, manifest: Manifest, chunks: list[Chunk], terms: Bm25, vectors: np.ndarray,
                  sentence_vectors: np.ndarray | None = None, config: Storing | None = None) -> "FaissStore":
        """A store never saved, for benchmarks that score many settings over one set of vectors."""
        config = config or Storing()
        sentence_vectors = sentence_vectors if sentence_vectors is not None else np.zeros((0, vectors.shape[1]), np.float32)
        return cls(manifest, [Segment.make(chunks, terms, vectors, sentence_vectors, config)], config=config)

    def __len__(self) -> int:
        return int(self.alive.sum())

    # ---- reads -------------------------------------------------------------

    def dense(self, vector: np.ndarray, n: int, within: Collection[int] | None = None) -> list[tuple[int, float]]:
        vector = vector.astype(np.float32)
        if within is not None:  # a filter: exact scores of the chunks in it (a subset; no index to search)
            ids = np.fromiter(within, dtype=np.int64)
            ids = ids[(ids >= 0) & (ids < len(self.alive))]
            ids = ids[self.alive[ids]]
            return _top(ids, self.vectors_of(ids) @ vector, n)
        found: list[tuple[int, float]] = []
        for segment, offset in zip(self.segments, self.offsets):
            found += _search(segment, self.alive[offset : offset + len(segment)], vector, n, int(offset))
        return sorted(found, key=lambda hit: -hit[1])[:n]

    def lexical(self, terms: list[str], n: int, within: Collection[int] | None = None) -> list[tuple[int, float]]:
        if not terms or not len(self):
            return []
        scored = scores([(s.terms, self.alive[o : o + len(s)]) for s, o in zip(self.segments, self.offsets)], terms)
        ids = np.arange(len(scored)) if within is None else np.fromiter(within, dtype=np.int64)
        ids = ids[(ids >= 0) & (ids < len(scored))]
        return [(i, s) for i, s in _top(ids, scored[ids], n) if s > 0]

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        return {i: self.chunk_list[i] for i in ids if 0 <= i < len(self.chunk_list) and self.alive[i]}

    def iter_chunks(self) -> Iterator[Chunk]:
        return (c for c in self.chunk_list if self.alive[c.id])

    def sentence_vectors_of(self, chunk_id: int) -> np.ndarray:
        segment, row = self._locate(chunk_id)
        return segment.sentence_vectors[segment.sentence_rows[row] : segment.sentence_rows[row + 1]]

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The chunk vectors of these ids, in their order."""
        out = np.zeros((len(ids), self.manifest.dim), np.float32)
        where = np.searchsorted(self.offsets, ids, side="right") - 1
        for s in np.unique(where):
            picked = where == s
            out[picked] = self.segments[s].vectors[ids[picked] - self.offsets[s]]
        return out

    def _locate(self, chunk_id: int) -> tuple[Segment, int]:
        s = int(np.searchsorted(self.offsets, chunk_id, side="right")) - 1
        return self.segments[s], chunk_id - int(self.offsets[s])

    # ---- writes ------------------------------------------------------------

    def write(self, update: Update) -> "FaissStore":
        """Mark the chunks of removed files deleted, add a segment for the new ones, compact when due,
        and save a new generation."""
        alive = self.alive & np.fromiter((c.source not in update.remove for c in self.chunk_list), bool, len(self.chunk_list))
        segments = list(self.segments)
        if update.chunks:
            first = len(alive)
            chunks = [c if c.id == first + i else dataclasses.replace(c, id=first + i) for i, c in enumerate(update.chunks)]
            segments.append(Segment.make(chunks, Bm25.from_tokens(update.tokens), update.vectors, update.sentence_vectors, self.config))
            alive = np.concatenate([alive, np.ones(len(chunks), bool)])
        start = 0 if self.legacy else _merge_from(segments, alive, self.config.max_segments)
        return self._saved(update.manifest, segments, alive, start)

    def compact(self) -> "FaissStore":
        """Merge every segment into one without the deleted rows, as a new generation."""
        return self._saved(self.manifest, list(self.segments), self.alive, 0)

    def _saved(self, manifest: Manifest, segments: list[Segment], alive: np.ndarray, merge_from: int | None) -> "FaissStore":
        if merge_from is not None and segments[merge_from:]:
            offsets = np.cumsum([0, *(len(s) for s in segments)])
            tail = [(s, alive[o : o + len(s)]) for s, o in zip(segments[merge_from:], offsets[merge_from:])]
            merged = Segment.merged(tail, int(offsets[merge_from]), self.config)
            log.info("compacted %d segments into one of %d chunks", len(tail), len(merged))
            segments = segments[:merge_from] + ([merged] if len(merged) else [])
            alive = np.concatenate([alive[: offsets[merge_from]], np.ones(len(merged), bool)])
        largest = max(segments, key=len, default=None)
        manifest = dataclasses.replace(manifest, count=int(alive.sum()), faiss=type(largest.faiss).__name__ if largest else "IndexFlatIP")
        store = FaissStore(manifest, segments, np.flatnonzero(~alive), self.index_dir, self.config)
        store.save(self.index_dir)
        return store

    @classmethod
    def empty(cls, manifest: Manifest, index_dir: Path, config: Storing) -> "FaissStore":
        return cls(manifest, [], None, index_dir, config)

    def save(self, index_dir: Path) -> Path:
        """Write the segments not yet on disk, then a generation naming them all, then point CURRENT at it."""
        index_dir.mkdir(parents=True, exist_ok=True)
        for segment in self.segments:
            if not segment.name:
                folder = index_dir / f"seg-{time.time_ns()}-{os.getpid()}"
                staging = folder.with_name(folder.name + ".tmp")
                segment.save(staging)
                _fsync_dir(staging)
                staging.rename(folder)
                segment.name = folder.name
        generation = index_dir / f"gen-{time.time_ns()}-{os.getpid()}"
        staging = generation.with_name(generation.name + ".tmp")
        staging.mkdir()
        np.save(staging / _DELETED, np.flatnonzero(~self.alive).astype(np.int64))
        self.manifest.checksums = {_DELETED: [(staging / _DELETED).stat().st_size, sha256(staging / _DELETED)]}
        self.manifest.segments = [{"name": s.name, "rows": len(s), "checksums": s.checksums} for s in self.segments]
        (staging / "manifest.json").write_text(json.dumps(dataclasses.asdict(self.manifest), indent=1, ensure_ascii=False))
        _fsync_dir(staging)
        staging.rename(generation)
        pointer = index_dir / "CURRENT.tmp"
        pointer.write_text(generation.name)
        os.replace(pointer, index_dir / "CURRENT")
        _fsync_dir(index_dir)
        _prune(index_dir, keep={generation.name, *_previous(index_dir, generation.name)})
        return generation

    @classmethod
    def load(cls, index_dir: Path, config: Storing | None = None) -> "FaissStore":
        """Open the current generation; any damage is one `CorruptIndexError` naming the file and the fix."""
        pointer = index_dir / "CURRENT"
        if not pointer.exists():
            raise IndexMissingError(f"no index in {index_dir}; build it with `rag --index {index_dir} index`")
        _remove_staging(index_dir)
        name = read(pointer, index_dir, lambda p: p.read_text(encoding="utf-8").strip())
        generation = index_dir / name
        if not name.startswith("gen-") or "/" in name or not generation.is_dir():
            raise CorruptIndexError(f"the index file {pointer} names no index generation ({name[:40]!r}); {repair_hint(index_dir)}")
        manifest = read(generation / "manifest.json", index_dir, lambda p: Manifest(**json.loads(p.read_text(encoding="utf-8"))))
        if manifest.format_version != FORMAT_VERSION:
            raise StaleIndexError(
                f"the index in {index_dir} has format {manifest.format_version}, this version reads "
                f"{FORMAT_VERSION}; {repair_hint(index_dir)}"
            )
        if not manifest.segments:  # written before segments: the generation folder is the one segment
            store = cls(manifest, [Segment.load(generation, manifest.checksums, index_dir)], None, index_dir, config, legacy=True)
        else:
            verify(generation, manifest.checksums, index_dir)
            deleted = read(generation / _DELETED, index_dir, np.load)
            segments = []
            for entry in manifest.segments:
                if not str(entry.get("name", "")).startswith("seg-") or "/" in entry["name"]:
                    raise CorruptIndexError(f"the index manifest in {generation} names a bad segment; {repair_hint(index_dir)}")
                segments.append(Segment.load(index_dir / entry["name"], entry["checksums"], index_dir))
            store = cls(manifest, segments, deleted, index_dir, config)
            if [len(s) for s in segments] != [e["rows"] for e in manifest.segments] or any(
                    s.chunks and s.chunks[0].id != o for s, o in zip(segments, store.offsets)):
                raise CorruptIndexError(f"the index in {index_dir} is inconsistent (segments differ); {repair_hint(index_dir)}")
        if len(store) != manifest.count:
            raise CorruptIndexError(f"the index in {index_dir} is inconsistent (counts differ); {repair_hint(index_dir)}")
        return store


def _merge_from(segments: list[Segment], alive: np.ndarray, max_segments: int) -> int | None:
    """Where compaction starts, or None when it is not due. Past `max_segments`: the longest run of
    last segments that together hold no more rows than the one before them, so the bulk of the archive
    is not rewritten for a few small appends (as in a binary counter, a row is rewritten about log n
    times in its life); everything when there is no such run or when half the rows are deleted."""
    if len(alive) and alive.sum() * 2 < len(alive):
        return 0
    if len(segments) <= max_segments:
        return None
    sizes = [len(s) for s in segments]
    return next((k for k in range(1, len(sizes) - 1) if sum(sizes[k:]) <= sizes[k - 1]), 0)


def _search(segment: Segment, alive: np.ndarray, vector: np.ndarray, n: int, offset: int) -> list[tuple[int, float]]:
    """The n nearest live rows of one segment: deleted rows may take places, so ask for more until
    n live ones come back or the segment is exhausted."""
    deleted = len(segment) - int(alive.sum())
    k = min(len(segment), n + min(deleted, n))
    while k:
        scores_, ids = segment.faiss.search(vector.reshape(1, -1), k)
        hits = [(offset + int(i), float(s)) for i, s in zip(ids[0], scores_[0]) if i >= 0 and alive[i]]
        if len(hits) >= n or k == len(segment) or not deleted:
            return hits[:n]
        k = min(len(segment), 4 * k)
    return []


def _top(ids: np.ndarray, scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The n best (id, score), best first."""
    order = np.argsort(-scores, kind="stable")[:n]
    return [(int(ids[i]), float(scores[i])) for i in order]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _previous(index_dir: Path, current: str) -> list[str]:
    gens = sorted((p.name for p in index_dir.glob("gen-*") if not p.name.endswith(".tmp")), key=_gen_time)
    older = [g for g in gens if g != current]
    return older[-1:]  # keep one previous generation for readers still loading it


def _gen_time(name: str) -> int:
    return int(name.split("-")[1])


def _prune(index_dir: Path, keep: set[str]) -> None:
    """Remove the generations not kept, then the segments no kept generation lists."""
    for path in index_dir.glob("gen-*"):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
    try:
        used = {entry["name"] for name in keep for entry in json.loads((index_dir / name / "manifest.json").read_text(encoding="utf-8"))["segments"]}
    except (OSError, ValueError, KeyError, TypeError):
        return  # a kept generation cannot be read: keep every segment rather than guess
    for path in index_dir.glob("seg-*"):
        if path.name not in used:
            shutil.rmtree(path, ignore_errors=True)


def _remove_staging(index_dir: Path) -> None:
    """Staging folders a crashed build left behind; only when no writer holds the lock."""
    if not any(index_dir.glob("*.tmp")):
        return
    try:
        with open(index_dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                for path in index_dir.glob("*.tmp"):
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
                    log.info("removed %s, left by an interrupted build", path.name)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    except OSError:
        pass  # a writer is busy (its staging is live) or the folder is read-only
