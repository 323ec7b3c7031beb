"""Embedding throughput on a GPU, through rag.embed's own code path (embed_device=auto).

    .venv/bin/python bench/gpu_embedding.py --prepare /tmp/rag-answers-bench/DRCD_dev/index   # here
    python3 bench/gpu_embedding.py            # on the GPU machine, with .gpu/ carried along

The e5-small weights (71 MB even packed) do not fit the 64 MiB that travels to the lent GPU
machine, so the model there is e5-small's architecture and tokenizer with random weights: the
same shapes, tokens and arithmetic, so the same speed. Texts: the chunks of the given index
(DRCD dev: 1,581 chunks, 12,154 sentence spans). Results: $OUT/gpu-embedding.json.
"""
import argparse, json, lzma, os, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare(index: Path) -> None:
    """Write .gpu/: the index's chunk texts with their sentence spans, and the model folder without weights."""
    from rag.chunk import sentence_spans
    from rag.config import Config
    from rag.stores.faiss import FaissStore

    gpu, model = ROOT / ".gpu", Config().embed_model_path
    shutil.rmtree(gpu, ignore_errors=True)
    (gpu / "e5").mkdir(parents=True)
    for name in ("config.json", "tokenizer_config.json", "sentence_bert_config.json", "modules.json", "config_sentence_transformers.json"):
        shutil.copy(model / name, gpu / "e5" / name)
    for folder in ("1_Pooling", "2_Normalize"):
        shutil.copytree(model / folder, gpu / "e5" / folder)
    (gpu / "tokenizer.json.xz").write_bytes(lzma.compress((model / "tokenizer.json").read_bytes()))
    rows = [{"text": c.search_text, "spans": sentence_spans(c)} for c in FaissStore.load(index).iter_chunks()]
    with lzma.open(gpu / "chunks.json.xz", "wt", encoding="utf-8") as f:
        json.dump(rows, f, ensure_ascii=False)


parser = argparse.ArgumentParser()
parser.add_argument("--prepare", type=Path, metavar="INDEX_DIR")
args = parser.parse_args()
if args.prepare:
    prepare(args.prepare)
    raise SystemExit
import torch
import transformers
root, model = ROOT / ".gpu", Path("/tmp/e5")
shutil.rmtree(model, ignore_errors=True)
shutil.copytree(root / "e5", model)
(model / "tokenizer.json").write_bytes(lzma.open(root / "tokenizer.json.xz").read())
from transformers import XLMRobertaConfig, XLMRobertaModel
torch.manual_seed(0)
XLMRobertaModel(XLMRobertaConfig.from_pretrained(model)).save_pretrained(model)
rows = json.load(lzma.open(root / "chunks.json.xz", "rt", encoding="utf-8"))
rows = rows[: int(os.environ.get("LIMIT", len(rows)))]
texts, spans = [r["text"] for r in rows], [[tuple(s) for s in r["spans"]] for r in rows]
from rag.config import Config
from rag.embed import SentenceTransformerEmbedder
out = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "torch": torch.__version__,
       "transformers": transformers.__version__, "cpu_threads": torch.get_num_threads(), "chunks": len(texts),
       "sentences": sum(map(len, spans)), "runs": {}}
import numpy as np


def loop_pool(self, hidden, offsets, spans):
    """The span pooling before this change (one mean and one copy per sentence), for a same-machine baseline."""
    first, last = offsets[:, 0], offsets[:, 1]
    real = last > first
    vectors = np.full((len(spans), self.dim), np.nan, np.float32)
    for k, (a, b) in enumerate(spans):
        inside = real & (first < b) & (last > a)
        if inside.any():
            vectors[k] = torch.nn.functional.normalize(hidden[inside].mean(0), p=2, dim=0).float().cpu().numpy()
    return vectors


matrix_pool = SentenceTransformerEmbedder._pool_spans
for label, pool, batch, times in [("loop pooling", loop_pool, 128, 4), ("loop pooling", loop_pool, 8, 4),
                                  ("matrix pooling", matrix_pool, 8, 4), ("matrix pooling", matrix_pool, 32, 4),
                                  ("matrix pooling", matrix_pool, 128, 4), ("matrix pooling", matrix_pool, 512, 4)]:
    SentenceTransformerEmbedder._pool_spans = pool
    e = SentenceTransformerEmbedder(Config(embed_model=str(model), embed_device="auto", embed_batch_size=batch))
    e.encode_passages_with_spans(texts[:64], spans[:64])  # load and warm up
    tokens = sum(len(x) for x in e.tokenizer(["passage: " + t for t in texts], truncation=True, max_length=e.max_length)["input_ids"])
    sync = torch.cuda.synchronize if e.device.startswith("cuda") else (lambda: None)
    sync(); t0 = time.perf_counter()
    for _ in range(times):
        vectors, pooled = e.encode_passages_with_spans(texts, spans)
    sync(); dt = (time.perf_counter() - t0) / times
    sync(); t0 = time.perf_counter()
    for _ in range(times):
        e.encode_passages(texts)
    sync(); plain = (time.perf_counter() - t0) / times
    key = f"{e.device}, batch {batch}, {label}"
    out.setdefault("pooled_first_rows", {})[key] = [round(float(x), 5) for x in pooled[0][0][:4]]
    out["runs"][key] = {"chunks_and_sentences_s": round(dt, 3), "chunks_per_s": round(len(texts) / dt), "tokens_per_s": round(tokens / dt),
                        "chunk_vectors_only_s": round(plain, 3), "tokens": tokens}
    print(key, out["runs"][key], flush=True)
Path(os.environ.get("OUT", "/tmp")).joinpath("gpu-embedding.json").write_text(json.dumps(out, indent=1))
print(json.dumps(out))
