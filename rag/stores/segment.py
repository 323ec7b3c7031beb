"""One immutable part of a FAISS store: chunks, their vectors and sentence vectors, BM25 counts and a
FAISS index, written once into a folder of its own and never changed afterwards.

A build that adds files writes only a segment for them (the store's other segments stay on disk as
they are), so adding 10 files to a 100k-chunk archive no longer rewrites and re-hashes gigabytes.
Chunk ids are global: a segment's chunks carry the ids they have in the whole store.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Storing
from .base import CorruptIndexError, repair_hint
from .bm25 import Bm25
from ..types import Chunk

FILES = ("chunks.jsonl", "vectors.npy", "sentence_vectors.npy", "faiss.index")
TERMS = "terms"
VERIFIED = ".verified"  # written once a folder's checksums matched; later opens check sizes only


@dataclass
class Segment:
    chunks: list[Chunk]
    terms: Bm25
    vectors: np.ndarray
    sentence_vectors: np.ndarray
    faiss: object
    name: str = ""  # its folder in the index; "" until saved
    checksums: dict[str, list] = field(default_factory=dict)  # file -> [size, sha256], once saved

    def __post_init__(self) -> None:
        self.sentence_rows = np.concatenate([[0], np.cumsum([len(c.sentences) for c in self.chunks])]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.chunks)

    @classmethod
    def make(cls, chunks: list[Chunk], terms: Bm25, vectors: np.ndarray, sentence_vectors: np.ndarray,
             config: Storing) -> "Segment":
        vectors = np.asarray(vectors, dtype=np.float32)
        return cls(chunks, terms, vectors, np.asarray(sentence_vectors, dtype=np.float32), make_faiss(vectors, config))

    @classmethod
    def merged(cls, parts: list[tuple["Segment", np.ndarray]], first_id: int, config: Storing) -> "Segment":
        """One segment of the rows where each part's mask is true, their chunks numbered from `first_id`."""
        chunks, vectors, sentences = [], [], []
        for segment, kept in parts:
            keep = np.flatnonzero(kept)
            chunks += [segment.chunks[i] for i in keep]
            vectors.append(segment.vectors[keep])
            sentences.append(segment.sentence_vectors[np.repeat(kept, np.diff(segment.sentence_rows))])
        dim = parts[0][0].vectors.shape[1]
        return cls.make([_renumbered(c, first_id + i) for i, c in enumerate(chunks)], Bm25.joined([(s.terms, kept) for s, kept in parts]),
                        np.concatenate([np.zeros((0, dim), np.float32), *vectors], dtype=np.float32),
                        np.concatenate([np.zeros((0, dim), np.float32), *sentences], dtype=np.float32), config)

    def save(self, folder: Path) -> None:
        """Write every file into `folder` (a staging folder the store renames) and note their checksums."""
        import faiss

        folder.mkdir()
        with open(folder / "chunks.jsonl", "w", encoding="utf-8") as f:
            for chunk in self.chunks:
                f.write(json.dumps(vars(chunk), ensure_ascii=False) + "\n")  # asdict deep-copies: 5 s at 33k chunks
        np.save(folder / "vectors.npy", self.vectors)
        np.save(folder / "sentence_vectors.npy", self.sentence_vectors)
        faiss.write_index(self.faiss, str(folder / "faiss.index"))
        files = [*FILES, *(str(p.relative_to(folder)) for p in self.terms.save(folder / TERMS))]
        self.checksums = {name: [(folder / name).stat().st_size, sha256(folder / name)] for name in files}

    @classmethod
    def load(cls, folder: Path, checksums: dict[str, list], index_dir: Path) -> "Segment":
        """Open a saved segment (or a whole generation written before segments); any damage is one
        `CorruptIndexError` naming the file and the fix."""
        import faiss

        verify(folder, checksums, index_dir)
        chunks, tokens = read(folder / "chunks.jsonl", index_dir, _read_chunks)
        if (folder / TERMS).is_dir():
            terms = read(folder / TERMS, index_dir, Bm25.load)
        else:  # written before term counts were kept: count the stored terms once; the next build saves the counts
            if (folder / "tokens.jsonl").exists():
                tokens = read(folder / "tokens.jsonl", index_dir, _read_tokens)
            terms = Bm25.from_tokens(tokens)
        # Mapped, not read: a large archive's sentence vectors are paged in only for the passages retrieved.
        vectors = read(folder / "vectors.npy", index_dir, lambda p: np.load(p, mmap_mode="r"))
        sentence_vectors = read(folder / "sentence_vectors.npy", index_dir, lambda p: np.load(p, mmap_mode="r"))
        faiss_index = read(folder / "faiss.index", index_dir, lambda p: faiss.read_index(str(p)))
        if not (len(chunks) == vectors.shape[0] == faiss_index.ntotal == len(terms)):
            raise CorruptIndexError(f"the index folder {folder} is inconsistent (counts differ); {repair_hint(index_dir)}")
        segment = cls(chunks, terms, vectors, sentence_vectors, faiss_index, folder.name, checksums)
        if segment.sentence_rows[-1] != len(sentence_vectors):
            raise CorruptIndexError(f"the index folder {folder} is inconsistent (sentence counts differ); {repair_hint(index_dir)}")
        return segment


def _renumbered(chunk: Chunk, chunk_id: int) -> Chunk:
    return chunk if chunk.id == chunk_id else dataclasses.replace(chunk, id=chunk_id)


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


def read(path: Path, index_dir: Path, reader):
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


def verify(folder: Path, checksums: dict[str, list], index_dir: Path) -> None:
    """Sizes at every open; sha256 of every file once per folder, then a marker says it was done
    (a segment is hashed once in its life, not again with each generation that lists it)."""
    for name, (size, _) in checksums.items():
        path = folder / name
        actual = path.stat().st_size if path.exists() else -1
        if actual != size:
            raise CorruptIndexError(f"the index file {path} has {actual} bytes, {size} were written; {repair_hint(index_dir)}")
    if not checksums or (folder / VERIFIED).exists():
        return
    for name, (_, digest) in checksums.items():
        if sha256(folder / name) != digest:
            raise CorruptIndexError(f"the index file {folder / name} is damaged (checksum differs); {repair_hint(index_dir)}")
    try:
        (folder / VERIFIED).touch()
    except OSError:
        pass  # a read-only index is checked again next time


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
