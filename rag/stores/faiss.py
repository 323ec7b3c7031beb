"""The embedded default: chunks, vectors and a FAISS index in generation folders on disk.

Layout: `index/CURRENT` names a generation folder holding every file of one
build. A build writes a new generation and then swaps CURRENT with
`os.replace`, so readers never see a half-written index. BM25 keeps term counts
(`terms/`, see bm25.py), so a build that adds files appends to them.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Collection, Iterable, Iterator

import numpy as np

from ..config import Storing
from ..types import Chunk
from .base import FORMAT_VERSION, CorruptIndexError, IndexMissingError, Manifest, StaleIndexError, Update, repair_hint
from .bm25 import Bm25

log = logging.getLogger(__name__)

_FILES = ("chunks.jsonl", "vectors.npy", "sentence_vectors.npy", "faiss.index")
_TERMS = "terms"
_VERIFIED = ".verified"  # written once a generation's checksums matched; later opens check sizes only


class FaissStore:
    def __init__(
        self, manifest: Manifest, chunks: list[Chunk], terms: Bm25, vectors: np.ndarray, faiss_index,
        sentence_vectors: np.ndarray | None = None, index_dir: Path | None = None, config: Storing | None = None,
    ):
        self.manifest = manifest
        self.chunk_list = chunks
        self.terms = terms
        self.vectors = vectors
        self.faiss = faiss_index
        self.sentence_vectors = sentence_vectors if sentence_vectors is not None else np.zeros((0, vectors.shape[1]), np.float32)
        self.sentence_rows = np.concatenate([[0], np.cumsum([len(c.sentences) for c in chunks])]).astype(np.int64)
        self.index_dir = index_dir
        self.config = config or Storing()

    def __len__(self) -> int:
        return len(self.chunk_list)

    # ---- reads -------------------------------------------------------------

    def dense(self, vector: np.ndarray, n: int, within: Collection[int] | None = None) -> list[tuple[int, float]]:
        if not self.chunk_list:
            return []
        if within is not None:  # a filter: exact scores of the chunks in it (a subset; no index to search)
            ids = np.fromiter(within, dtype=np.int64)
            return _top(ids, self.vectors[ids] @ vector.astype(np.float32), n)
        scores, ids = self.faiss.search(vector.reshape(1, -1).astype(np.float32), min(n, len(self.chunk_list)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def lexical(self, terms: list[str], n: int, within: Collection[int] | None = None) -> list[tuple[int, float]]:
        terms = [t for t in terms if t in self.terms.vocab] if self.chunk_list else []
        if not terms:
            return []
        scores = self.terms.scores(terms)
        ids = np.arange(len(scores)) if within is None else np.fromiter(within, dtype=np.int64)
        return [(i, s) for i, s in _top(ids, scores[ids], n) if s > 0]

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        return {i: self.chunk_list[i] for i in ids if 0 <= i < len(self.chunk_list)}

    def iter_chunks(self) -> Iterator[Chunk]:
        return iter(self.chunk_list)

    def sentence_vectors_of(self, chunk_id: int) -> np.ndarray:
        return self.sentence_vectors[self.sentence_rows[chunk_id] : self.sentence_rows[chunk_id + 1]]

    # ---- writes ------------------------------------------------------------

    def write(self, update: Update) -> "FaissStore":
        """Keep the rows of untouched files, append the new ones, and save a new generation."""
        kept = np.fromiter((c.source not in update.remove for c in self.chunk_list), bool, len(self.chunk_list))
        keep = np.flatnonzero(kept)
        chunks = [c if c.id == i else dataclasses.replace(c, id=i) for i, c in enumerate([self.chunk_list[i] for i in keep] + update.chunks)]
        if len(keep):
            vectors = np.concatenate([self.vectors[keep], update.vectors], dtype=np.float32)
            rows = np.repeat(kept, np.diff(self.sentence_rows))  # the kept chunks' sentences
            sentence_vectors = np.concatenate([self.sentence_vectors[rows], update.sentence_vectors], dtype=np.float32)
        else:  # a first build: no copy of what may be gigabytes
            vectors = np.asarray(update.vectors, dtype=np.float32)
            sentence_vectors = np.asarray(update.sentence_vectors, dtype=np.float32)
        faiss_index = self._extended(update.vectors) if len(keep) == len(self.chunk_list) else None
        if faiss_index is None:
            faiss_index = make_faiss(vectors, self.config)
        manifest = dataclasses.replace(update.manifest, count=len(chunks), faiss=type(faiss_index).__name__)
        store = FaissStore(manifest, chunks, self.terms.updated(kept, update.tokens), vectors, faiss_index,
                           sentence_vectors, self.index_dir, self.config)
        store.save(self.index_dir)
        return store

    def _extended(self, added: np.ndarray):
        """When a build only adds, a copy of the current FAISS index with the new vectors appended
        (an HNSW graph over 100k chunks takes a minute to rebuild); None when the kind must change."""
        import faiss

        if isinstance(self.faiss, faiss.IndexFlat) and len(self.chunk_list) + len(added) > self.config.ann_threshold:
            return None  # grown past ann_threshold: exact becomes approximate
        index = faiss.clone_index(self.faiss)
        if len(added):
            index.add(np.ascontiguousarray(added, dtype=np.float32))
        return index

    @classmethod
    def empty(cls, manifest: Manifest, index_dir: Path, config: Storing) -> "FaissStore":
        vectors = np.zeros((0, manifest.dim), np.float32)
        return cls(manifest, [], Bm25.empty(), vectors, make_faiss(vectors, config), None, index_dir, config)

    def save(self, index_dir: Path) -> Path:
        import faiss

        index_dir.mkdir(parents=True, exist_ok=True)
        generation = index_dir / f"gen-{time.time_ns()}-{os.getpid()}"
        staging = generation.with_name(generation.name + ".tmp")
        staging.mkdir()
        with open(staging / "chunks.jsonl", "w", encoding="utf-8") as f:
            for chunk in self.chunk_list:
                f.write(json.dumps(vars(chunk), ensure_ascii=False) + "\n")  # asdict deep-copies: 5 s at 33k chunks
        np.save(staging / "vectors.npy", self.vectors)
        np.save(staging / "sentence_vectors.npy", self.sentence_vectors)
        faiss.write_index(self.faiss, str(staging / "faiss.index"))
        files = [*_FILES, *(str(p.relative_to(staging)) for p in self.terms.save(staging / _TERMS))]
        self.manifest.checksums = {name: [(staging / name).stat().st_size, _sha256(staging / name)] for name in files}
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
        import faiss

        pointer = index_dir / "CURRENT"
        if not pointer.exists():
            raise IndexMissingError(f"no index in {index_dir}; build it with `rag --index {index_dir} index`")
        _remove_staging(index_dir)
        name = _read(pointer, index_dir, lambda p: p.read_text(encoding="utf-8").strip())
        generation = index_dir / name
        if not name.startswith("gen-") or "/" in name or not generation.is_dir():
            raise CorruptIndexError(f"the index file {pointer} names no index generation ({name[:40]!r}); {repair_hint(index_dir)}")
        manifest = _read(generation / "manifest.json", index_dir, lambda p: Manifest(**json.loads(p.read_text(encoding="utf-8"))))
        if manifest.format_version != FORMAT_VERSION:
            raise StaleIndexError(
                f"the index in {index_dir} has format {manifest.format_version}, this version reads "
                f"{FORMAT_VERSION}; {repair_hint(index_dir)}"
            )
        _verify(generation, manifest, index_dir)
        chunks, tokens = _read(generation / "chunks.jsonl", index_dir, _read_chunks)
        if (generation / _TERMS).is_dir():
            terms = _read(generation / _TERMS, index_dir, Bm25.load)
        else:  # written before term counts were kept: count the stored terms once; the next build saves the counts
            if (generation / "tokens.jsonl").exists():
                tokens = _read(generation / "tokens.jsonl", index_dir, _read_tokens)
            terms = Bm25.from_tokens(tokens)
        # Mapped, not read: a large archive's sentence vectors are paged in only for the passages retrieved.
        vectors = _read(generation / "vectors.npy", index_dir, lambda p: np.load(p, mmap_mode="r"))
        sentence_vectors = _read(generation / "sentence_vectors.npy", index_dir, lambda p: np.load(p, mmap_mode="r"))
        faiss_index = _read(generation / "faiss.index", index_dir, lambda p: faiss.read_index(str(p)))
        if not (len(chunks) == vectors.shape[0] == faiss_index.ntotal == manifest.count == len(terms)):
            raise CorruptIndexError(f"the index in {index_dir} is inconsistent (counts differ); {repair_hint(index_dir)}")
        index = cls(manifest, chunks, terms, vectors, faiss_index, sentence_vectors, index_dir, config)
        if index.sentence_rows[-1] != len(sentence_vectors):
            raise CorruptIndexError(f"the index in {index_dir} is inconsistent (sentence counts differ); {repair_hint(index_dir)}")
        return index


def _top(ids: np.ndarray, scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The n best (id, score), best first."""
    order = np.argsort(-scores, kind="stable")[:n]
    return [(int(ids[i]), float(scores[i])) for i in order]


def make_faiss(vectors: np.ndarray, config: Storing):
    """Exact inner product for small corpora; HNSW or IVF above `ann_threshold` chunks."""
    import faiss

    n, dim = vectors.shape
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if n <= config.ann_threshold:
        index = faiss.IndexFlatIP(dim)
    elif config.ann == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = config.hnsw_ef_search
    elif config.ann == "ivf":
        nlist = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)]
        index.train(sample)
        index.nprobe = config.ivf_nprobe
    else:
        raise ValueError(f"unknown ann index {config.ann!r}; choose hnsw or ivf")
    if n:
        index.add(vectors)
    return index


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
    for path in index_dir.glob("gen-*"):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _read(path: Path, index_dir: Path, reader):
    """Run `reader(path)`; whatever goes wrong becomes one line naming the file and the fix."""
    try:
        return reader(path)
    except Exception as exc:
        raise CorruptIndexError(
            f"the index file {path} is unreadable ({type(exc).__name__}: {str(exc)[:120]}); {repair_hint(index_dir)}"
        ) from exc


def _read_tokens(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _read_chunks(path: Path) -> tuple[list[Chunk], list[list[str]]]:
    """Chunks, and their terms where an older index kept them in the same file."""
    chunks, tokens = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if "tokens" in row:
                tokens.append(row.pop("tokens"))
            row["sentences"] = tuple(tuple(span) for span in row["sentences"])
            chunks.append(Chunk(**row))
    return chunks, tokens


def _verify(generation: Path, manifest: Manifest, index_dir: Path) -> None:
    """Sizes at every open; sha256 of every file once per generation, then a marker says it was done."""
    for name, (size, _) in manifest.checksums.items():
        path = generation / name
        actual = path.stat().st_size if path.exists() else -1
        if actual != size:
            raise CorruptIndexError(f"the index file {path} has {actual} bytes, {size} were written; {repair_hint(index_dir)}")
    if not manifest.checksums or (generation / _VERIFIED).exists():
        return
    for name, (_, digest) in manifest.checksums.items():
        if _sha256(generation / name) != digest:
            raise CorruptIndexError(f"the index file {generation / name} is damaged (checksum differs); {repair_hint(index_dir)}")
    try:
        (generation / _VERIFIED).touch()
    except OSError:
        pass  # a read-only index is checked again next time


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
