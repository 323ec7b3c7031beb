"""Where the index lives: `faiss` (files in index/, the default) or `milvus` (Milvus Lite or a server).

`open_store(config)` opens the configured store for searching; `empty_store` starts a
new one for a full build. Both implementations answer the `Store` interface in
`base.py`, and retrieval fuses their dense and BM25 candidates the same way.
"""
from __future__ import annotations

from ..config import Config
from .base import (
    FORMAT_VERSION,
    CorruptIndexError,
    IndexMissingError,
    IndexProblem,
    Manifest,
    StaleIndexError,
    Store,
    StoreUnavailableError,
    Update,
    check_compatible,
    chunking_params,
    repair_hint,
)

STORES = ("faiss", "milvus")

__all__ = [
    "STORES", "FORMAT_VERSION", "CorruptIndexError", "IndexMissingError", "IndexProblem", "Manifest", "StaleIndexError",
    "Store", "StoreUnavailableError", "Update", "check_compatible", "chunking_params", "empty_store", "open_store", "repair_hint",
]


def open_store(config: Config) -> Store:
    if config.store == "faiss":
        from .faiss import FaissStore

        return FaissStore.load(config.index_dir, config)
    if config.store == "milvus":
        from .milvus import MilvusStore

        return MilvusStore.load(config)
    raise ValueError(f"unknown store {config.store!r}; choose one of {', '.join(STORES)}")


def empty_store(config: Config, model: str, dim: int) -> Store:
    """A store with nothing in it, for a build from scratch (the old one stays readable until the build commits,
    except on Milvus, whose collections are dropped and made anew)."""
    manifest = Manifest(FORMAT_VERSION, model, dim, chunking_params(config), {}, 0, "")
    if config.store == "faiss":
        from .faiss import FaissStore

        return FaissStore.empty(manifest, config.index_dir, config)
    if config.store == "milvus":
        from .milvus import MilvusStore

        return MilvusStore.create(config, model, dim, manifest.chunking)
    raise ValueError(f"unknown store {config.store!r}; choose one of {', '.join(STORES)}")
