"""What every store keeps and answers: the manifest, the errors, and the one interface.

A store holds the chunks of the seed files with their dense vectors, BM25 terms and
sentence vectors. Retrieval asks it for dense and BM25 candidates and fuses them
itself, so every store gives the same ranking; the evidence stage asks it for a
chunk's sentence vectors. A build hands it one `Update`, which it applies atomically.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Iterable, Iterator, Protocol

import numpy as np

from ..config import Config
from ..types import Chunk

FORMAT_VERSION = 2


def repair_hint(index_dir: Path) -> str:
    """The command that fixes it, naming the user's own index folder."""
    return f"`rag --index {index_dir} index` rebuilds it from the seeds"


class IndexProblem(RuntimeError):
    """The index cannot be used as it is; the message says how to fix it."""


class IndexMissingError(IndexProblem):
    pass


class CorruptIndexError(IndexProblem):
    pass


class StaleIndexError(IndexProblem):
    pass


class StoreUnavailableError(IndexProblem):
    """The store's engine cannot be reached or opened (a server down, a file held by another process)."""


@dataclass
class Manifest:
    format_version: int
    embed_model: str
    dim: int
    chunking: dict
    files: dict[str, str]  # seed file name -> sha256
    count: int
    faiss: str  # the vector index kind (a FAISS class name, or "milvus")
    built_at: float = field(default_factory=time.time)
    problems: dict[str, str] = field(default_factory=dict)  # seed file -> why it holds no chunks
    dates: dict[str, str] = field(default_factory=dict)  # seed file -> YYYY-MM-DD its metadata gives
    checksums: dict[str, list] = field(default_factory=dict)  # index file -> [size, sha256]
    segments: list[dict] = field(default_factory=list)  # FAISS store: its segment folders, in order (name, rows, checksums)


@dataclass
class Update:
    """One build's change: drop every chunk of the files in `remove` (every indexed file not kept as
    it is), add `chunks` (ids assigned by the store)."""

    manifest: Manifest  # the manifest once applied (count is set by the store)
    remove: set[str]
    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: np.ndarray
    sentence_vectors: np.ndarray  # the sentences of `chunks`, in order


def chunking_params(config: Config) -> dict:
    return {"min": config.chunk_min, "max": config.chunk_max, "overlap": config.chunk_overlap_sentences}


class Store(Protocol):
    manifest: Manifest

    def __len__(self) -> int: ...

    def dense(self, vector: np.ndarray, n: int, within: Collection[int] | None = None) -> list[tuple[int, float]]:
        """The n chunks nearest to a normalised query vector, as (chunk id, inner product); only
        chunks in `within` when given (a folder or date filter, applied inside the search)."""

    def lexical(self, terms: list[str], n: int, within: Collection[int] | None = None) -> list[tuple[int, float]]:
        """The n chunks with the highest positive BM25 score for these jieba terms."""

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        """Chunks by id (ids that are gone are left out)."""

    def iter_chunks(self) -> Iterator[Chunk]:
        """Every searchable chunk (for tests, benchmarks and exports; a search never walks them all)."""

    def sentence_vectors_of(self, chunk_id: int) -> np.ndarray:
        """One row per sentence of the chunk, in order."""

    def write(self, update: Update) -> "Store":
        """Apply a build atomically and return the store as it now is."""

    def compact(self) -> "Store":
        """Merge what the writes left in parts (segments, deleted rows) into one, atomically."""


def check_compatible(manifest: Manifest, name: str, dim: int, config: Config) -> None:
    """A store built with another embedding model or chunking cannot be searched with this one."""
    if manifest.embed_model != name or manifest.dim != dim:
        raise StaleIndexError(
            f"the index was built with {manifest.embed_model} ({manifest.dim}-d) but the configured model is "
            f"{name} ({dim}-d); {repair_hint(Path(config.index_dir))}"
        )
    if manifest.chunking != chunking_params(config):
        raise StaleIndexError(
            f"the index was built with chunking {manifest.chunking}, configured {chunking_params(config)}; "
            f"{repair_hint(Path(config.index_dir))}"
        )
