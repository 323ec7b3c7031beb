"""e5's transformer, and the judge built on it, as ONNX graphs run by ONNX Runtime.

Exported once from the installed weights (`rag models install`, else at first use) and then
run without torch, which costs seconds at every cold start. On two cores ONNX Runtime embeds
passages as fast as torch (12.5 vs 11.6 paragraphs/s) and runs the judge in 0.6 of the time the
NumPy network it replaced took, with the same results (`bench/runtimes.py`, docs/benchmarks.md).
The graphs read token vectors, not token ids: the 384 MB vocabulary table stays in the model's
safetensors, memory-mapped, so only the rows a text uses are read, and a graph holds the layers
alone (86 MB).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ENCODER = "encoder.onnx"
ENCODER_INT8 = "encoder-int8.onnx"
_WORDS = "embeddings.word_embeddings.weight"
_OPSET = 17


def judge_graph(base: Path, digest: str) -> Path:
    """Where the judge with weights of this sha256 is kept: beside the e5 it is built on."""
    return base / f"judge-{digest[:16]}.onnx"


def mapped(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as read-only memory maps: the vocabulary table is read a
    row at a time, as tokens ask for it, instead of into memory."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    kinds = {"F32": np.float32, "F16": np.float16}
    out = {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        out[name] = np.memmap(path, dtype=np.dtype(kinds[entry["dtype"]]), mode="r", offset=8 + size + start,
                              shape=tuple(entry["shape"]))
    return out


def export(base: Path, out: Path, judge_weights: Path | None = None) -> Path:
    """Write the graph of e5's hidden states, or, given the judge's weights, of the judge's logit.
    Needs torch (installed with the package); written under a temporary name, then moved."""
    import torch
    from transformers import AutoModel

    class Body(torch.nn.Module):
        def __init__(self):
            super().__init__()
            # the plain attention arithmetic: ONNX Runtime runs its export 18% faster than the SDPA one's
            self.encoder = AutoModel.from_pretrained(str(base), attn_implementation="eager").eval()
            self.head = None

        def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(inputs_embeds=vectors, attention_mask=mask).last_hidden_state
            if self.head is None:
                return hidden
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            return self.head((hidden * weights).sum(1) / weights.sum(1).clamp(min=1)).squeeze(-1)

    body = Body()
    if judge_weights is not None:
        from safetensors.torch import load_file

        trained = load_file(str(judge_weights))
        body.head = torch.nn.Linear(body.encoder.config.hidden_size, 1)
        loaded = body.load_state_dict({k: v.float() for k, v in trained.items()}, strict=False)  # CrossEncoder's names
        if loaded.unexpected_keys:
            raise ValueError(f"{judge_weights} holds tensors the judge does not have: {loaded.unexpected_keys[:3]}")
    vectors = torch.zeros(2, 8, body.encoder.config.hidden_size)
    mask = torch.ones(2, 8, dtype=torch.long)
    partial = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    axes = {"vectors": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}, "out": {0: "batch"}}
    if judge_weights is None:
        axes["out"][1] = "tokens"
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it fixes; the tests compare the graphs with torch
        torch.onnx.export(body, (vectors, mask), str(partial), input_names=["vectors", "mask"], output_names=["out"],
                          dynamic_axes=axes, opset_version=_OPSET, dynamo=False)
    os.replace(partial, out)
    log.info("exported %s (%.0f MB)", out, out.stat().st_size / 1e6)
    return out


def quantise(source: Path, out: Path, nodes: list[str] | None = None) -> Path:
    """The graph with int8 weights, activations quantised per batch as it runs: weights per output
    channel and in 7 bits, which AVX2 without VNNI needs to multiply without overflow. `nodes`: only
    these matrix products (all by default; bench/judge_int8.py compares the judge's layers)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes)
    os.replace(partial, out)
    log.info("quantised %s (%.0f MB)", out, out.stat().st_size / 1e6)
    return out


class Graph:
    """An exported graph with the vocabulary table it reads from; thread-safe, sessions made on
    first use per thread count (a build beside questions runs with a core fewer)."""

    def __init__(self, path: Path, base: Path):
        self.path = path
        self.words = mapped(base / "model.safetensors")[_WORDS]
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()

    def session(self, threads: int):
        with self._lock:
            if threads not in self._sessions:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
                # threads sleep between runs instead of spinning: llama.cpp answers right after the judge
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._sessions[threads] = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            return self._sessions[threads]

    def __call__(self, ids: np.ndarray, mask: np.ndarray, threads: int) -> np.ndarray:
        """Hidden states (e5) or logits (the judge) of padded token ids and their attention mask."""
        vectors = np.asarray(self.words[ids], dtype=np.float32)
        return self.session(threads).run(None, {"vectors": vectors, "mask": mask.astype(np.int64)})[0]


def load_graph(path: Path, base: Path, judge_weights: Path | None = None) -> Graph:
    """The graph at `path`, made first when it is missing (once; `rag models install` does it ahead):
    exported, or for `ENCODER_INT8` quantised from the fp32 encoder."""
    if not path.exists():
        log.warning("making %s from %s once (`rag models install` does this ahead)", path.name, base)
        if path.name == ENCODER_INT8:
            quantise(load_graph(base / ENCODER, base).path, path)
        else:
            export(base, path, judge_weights)
    return Graph(path, base)
