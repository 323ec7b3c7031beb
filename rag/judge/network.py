"""The judge's network in NumPy, for answering: the same arithmetic as `model.CrossEncoder` (an
XLM-R encoder, mean pooling, one logit) without importing torch, which costs seconds at every cold
start. The installed e5 supplies the embeddings and lower layers (memory-mapped); the shipped file
the trained layers and the head."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_PREFIX = "encoder."  # CrossEncoder keeps the e5 model under .encoder


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0, dtype=x.dtype)))


def mapped(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as read-only memory maps: the 384 MB vocabulary table is
    read a row at a time, as tokens ask for it, instead of into memory."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    kinds = {"F32": np.float32, "F16": np.float16}
    out = {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        dtype = np.dtype(kinds[entry["dtype"]])
        out[name] = np.memmap(path, dtype=dtype, mode="r", offset=8 + size + start, shape=tuple(entry["shape"]))
    return out


class Network:
    def __init__(self, base: Path, trained: dict[str, np.ndarray]):
        config = json.loads((base / "config.json").read_text())
        self.heads, self.eps = int(config["num_attention_heads"]), float(config["layer_norm_eps"])
        self.layers, self.pad = int(config["num_hidden_layers"]), int(config["pad_token_id"])
        weights = {k: v if "word_embeddings" in k else np.array(v) for k, v in mapped(base / "model.safetensors").items()}
        for name, value in trained.items():
            if name.startswith(_PREFIX):
                weights[name[len(_PREFIX):]] = value.astype(np.float32)
        self.w = weights
        self.head_weight = trained["head.weight"].astype(np.float32)[0]
        self.head_bias = float(trained["head.bias"].astype(np.float32)[0])

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, eps = self.w, self.eps
        keep = ids != self.pad
        positions = np.cumsum(keep, axis=1) * keep + self.pad  # XLM-R numbers tokens from pad + 1
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        batch, width, hidden = x.shape
        size = hidden // self.heads
        blocked = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(h: np.ndarray, name: str) -> np.ndarray:
                return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            def split(h: np.ndarray) -> np.ndarray:
                return h.reshape(batch, width, self.heads, size).transpose(0, 2, 1, 3)

            q, k, v = (split(dense(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size, dtype=np.float32) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            context = context.transpose(0, 2, 1, 3).reshape(batch, width, hidden)
            x = _layer_norm(x + dense(context, "attention.output.dense"),
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            x = _layer_norm(x + dense(_gelu(dense(x, "intermediate.dense")), "output.dense"),
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        m = mask[..., None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1.0)
        return pooled @ self.head_weight + self.head_bias
