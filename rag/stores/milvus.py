"""Milvus as the store: one engine for a local file (Milvus Lite) or a shared server.

The same pymilvus calls talk to Milvus Lite (`milvus_uri` ending in `.db`) and to
Milvus Standalone or Distributed (`http://host:19530`). Three collections, named
from `milvus_collection`:

- `<name>_chunks`: a chunk per row with its dense vector, and its jieba terms
  (joined by spaces) in a text field that Milvus's own BM25 function turns into a
  sparse vector. The analyzer only splits at those spaces, so BM25 counts exactly
  the terms the FAISS store counts, with the same k1 and b.
- `<name>_sentences`: one vector per sentence of each chunk, for the evidence stage.
- `<name>_meta`: the build state (`committed` generation, next chunk id, model,
  chunking) and one row per seed file (hash, problem).

Atomicity without transactions: every row carries the generation of the build
that wrote it and searches only see `generation <= committed`. A build inserts
its rows under the next generation, then commits by upserting the one state row,
then deletes the rows it replaced. A crash before the commit leaves rows nobody
sees, removed by the next build; a crash after it leaves replaced rows that the
next build removes. For the moment between commit and delete, a changed file's
old chunks are visible beside its new ones.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections import OrderedDict
from pathlib import Path
from typing import Collection, Iterable, Iterator

import numpy as np

from ..config import Config
from .base import FORMAT_VERSION, CorruptIndexError, IndexMissingError, Manifest, StaleIndexError, StoreUnavailableError, Update, repair_hint
from ..types import Chunk

log = logging.getLogger(__name__)

_BATCH = 256  # rows per insert request: far below Milvus's 64 MB request limit for 350-character chunks
_CACHE = 4096  # chunks kept in memory by id; ids are never reused, so a cached chunk is never stale
_NAMES_PER_FILTER = 200
_STATE = "state"
_REFRESH_S = 2.0


def uri_of(config: Config) -> str:
    return config.milvus_uri or str(config.index_dir / "milvus.db")


def is_lite(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


class MilvusStore:
    def __init__(self, client, config: Config, state: dict, files: dict[str, dict]):
        self.client = client
        self.config = config
        self.name = config.milvus_collection
        self.state = state
        self.manifest = _manifest(state, files)
        self._cache: OrderedDict[int, Chunk] = OrderedDict()
        self._sentences: OrderedDict[int, np.ndarray] = OrderedDict()
        self._read_at = time.monotonic()

    def __len__(self) -> int:
        return self.manifest.count

    # ---- opening -----------------------------------------------------------

    @classmethod
    def load(cls, config: Config) -> "MilvusStore":
        client = connect(config)
        try:
            return cls._open(client, config)
        except _milvus_error() as exc:  # the engine is reachable (connect succeeded) but cannot read its files
            raise CorruptIndexError(f"the Milvus index {config.milvus_collection} at {uri_of(config)} cannot be read "
                                    f"({_first_line(exc)}); `rag index` rebuilds it from the seeds") from exc

    @classmethod
    def _open(cls, client, config: Config) -> "MilvusStore":
        name = config.milvus_collection
        if not client.has_collection(f"{name}_meta"):
            raise IndexMissingError(f"no index in Milvus at {uri_of(config)} (collection {name}_meta); build it with `rag index`")
        for suffix in ("meta", "chunks", "sentences"):
            client.load_collection(f"{name}_{suffix}")
        rows = client.query(f"{name}_meta", filter=f'key == "{_STATE}"', output_fields=["value"])
        if not rows:
            raise IndexMissingError(f"the Milvus index {name} at {uri_of(config)} was never completed; build it with `rag index`")
        state = rows[0]["value"]
        if state.get("format_version") != FORMAT_VERSION:
            raise StaleIndexError(
                f"the Milvus index {name} has format {state.get('format_version')}, this version reads {FORMAT_VERSION}; "
                f"{repair_hint(config.index_dir)}"
            )
        _check_count(client, name, state, uri_of(config))
        files = {}
        iterator = client.query_iterator(f"{name}_meta", batch_size=1000, filter='key like "file:%"', output_fields=["value"])
        while batch := iterator.next():
            files.update({row["key"][5:]: row["value"] for row in batch})
        iterator.close()
        return cls(client, config, state, files)

    @classmethod
    def create(cls, config: Config, model: str, dim: int, chunking: dict) -> "MilvusStore":
        """New, empty collections (dropping any of the same name: this is a rebuild)."""
        client = connect(config)
        name = config.milvus_collection
        try:
            for suffix in ("chunks", "sentences", "meta"):
                if client.has_collection(f"{name}_{suffix}"):
                    client.drop_collection(f"{name}_{suffix}")
        except _milvus_error() as exc:
            client = _wipe_lite(client, config, exc)
        _create_collections(client, name, dim, config)
        state = {"format_version": FORMAT_VERSION, "embed_model": model, "dim": dim, "chunking": chunking,
                 "committed": 0, "next_id": 0, "count": 0, "built_at": time.time()}
        _upsert_meta(client, name, [(_STATE, state)])
        return cls(client, config, state, {})

    # ---- reads -------------------------------------------------------------

    def _visible(self, within: Collection[int] | None = None) -> str:
        """Rows of committed builds (and of `within`, a filter's chunks); the state is re-read now and
        then, so a build by another process shows up."""
        if time.monotonic() - self._read_at > _REFRESH_S:
            rows = self.client.query(f"{self.name}_meta", filter=f'key == "{_STATE}"', output_fields=["value"])
            if rows:
                self.state = rows[0]["value"]
            self._read_at = time.monotonic()
        visible = f"generation <= {self.state['committed']}"
        return visible if within is None else f"{visible} and id in {sorted(int(i) for i in within)}"

    def dense(self, vector: np.ndarray, n: int, within: Collection[int] | None = None) -> list[tuple[int, float]]:
        if within is not None and not within:
            return []
        hits = self.client.search(
            f"{self.name}_chunks", data=[vector.astype(np.float32).tolist()], anns_field="vector", limit=n,
            filter=self._visible(within), output_fields=["id"], search_params={"metric_type": "IP"},
        )[0]
        return [(int(h["id"]), float(h["distance"])) for h in hits]

    def lexical(self, terms: list[str], n: int, within: Collection[int] | None = None) -> list[tuple[int, float]]:
        text = " ".join(t for t in terms if t.strip())
        if not text or (within is not None and not within):
            return []
        hits = self.client.search(
            f"{self.name}_chunks", data=[text], anns_field="sparse", limit=n, filter=self._visible(within), output_fields=["id"],
        )[0]
        # Milvus Lite reports BM25 as a negative distance, servers as a positive score: the size is the score.
        return [(int(h["id"]), abs(float(h["distance"]))) for h in hits if h["distance"]]

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        ids = list(dict.fromkeys(int(i) for i in ids))
        missing = [i for i in ids if i not in self._cache]
        if missing:
            rows = self.client.query(f"{self.name}_chunks", filter=f"id in {missing}", output_fields=["chunk"])
            for row in rows:
                self._cache[int(row["id"])] = _chunk(row)
            while len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return {i: self._cache[i] for i in ids if i in self._cache}

    def iter_chunks(self) -> Iterator[Chunk]:
        iterator = self.client.query_iterator(f"{self.name}_chunks", batch_size=1000, filter=self._visible(), output_fields=["chunk"])
        while batch := iterator.next():
            yield from (_chunk(row) for row in batch)
        iterator.close()

    def sentence_vectors_of(self, chunk_id: int) -> np.ndarray:
        if chunk_id not in self._sentences:
            rows = self.client.query(f"{self.name}_sentences", filter=f"chunk_id == {int(chunk_id)}", output_fields=["row", "vector"])
            rows.sort(key=lambda r: r["row"])
            self._sentences[chunk_id] = np.array([r["vector"] for r in rows], np.float32).reshape(len(rows), -1)
            while len(self._sentences) > _CACHE:
                self._sentences.popitem(last=False)
        return self._sentences[chunk_id]

    # ---- writes ------------------------------------------------------------

    def write(self, update: Update) -> "MilvusStore":
        name, client = self.name, self.client
        committed = self.state["committed"]
        self._forget_uncommitted()
        generation = committed + 1
        next_id = self.state["next_id"]
        sentence_row = 0
        for start in range(0, len(update.chunks), _BATCH):
            batch = update.chunks[start : start + _BATCH]
            rows, sentences = [], []
            for offset, chunk in enumerate(batch):
                i = start + offset
                data = {k: v for k, v in dataclasses.asdict(chunk).items() if k != "id"}
                rows.append({"id": next_id + i, "generation": generation, "source": chunk.source, "chunk": data,
                             "terms": " ".join(update.tokens[i]), "vector": update.vectors[i].tolist()})
                for row in range(len(chunk.sentences)):
                    sentences.append({"chunk_id": next_id + i, "row": row, "generation": generation, "source": chunk.source,
                                      "vector": update.sentence_vectors[sentence_row].tolist()})
                    sentence_row += 1
            client.insert(f"{name}_chunks", rows)
            if sentences:
                client.insert(f"{name}_sentences", sentences)
        client.flush(f"{name}_chunks")
        client.flush(f"{name}_sentences")
        # The count the build leaves once the rows it replaces are gone: what opening checks against.
        visible = f"generation <= {committed}"
        count = _count(client, f"{name}_chunks", visible) - _count_of(client, f"{name}_chunks", update.remove, visible) + len(update.chunks)
        # The commit: from here on searches see the new rows.
        state = {**self.state, "committed": generation, "next_id": next_id + len(update.chunks), "count": count, "built_at": time.time()}
        _upsert_meta(client, name, [(_STATE, state)])
        self.state = state
        self._delete_replaced(update.remove, generation)
        m = update.manifest
        old = self.manifest
        changed = [(f"file:{f}", _file_row(m, f)) for f in m.files if _file_row(old, f) != _file_row(m, f)]
        _upsert_meta(client, name, changed)
        gone = [f"file:{f}" for f in old.files if f not in m.files]
        for start in range(0, len(gone), _NAMES_PER_FILTER):
            client.delete(f"{name}_meta", ids=gone[start : start + _NAMES_PER_FILTER])
        state["count"] = _count(client, f"{name}_chunks", f"generation <= {generation}")
        if state["count"] != count:  # checked after every write, as at every open
            raise CorruptIndexError(f"the Milvus index {name} at {uri_of(self.config)} holds {state['count']} chunks after a build "
                                    f"that should leave {count}; `rag index` rebuilds it from the seeds")
        _upsert_meta(client, name, [(_STATE, state)])
        client.flush(f"{name}_meta")
        files = {f: _file_row(m, f) for f in m.files}
        return MilvusStore(client, self.config, state, files)

    def compact(self) -> "MilvusStore":
        """Milvus merges its own segments and purges deleted rows in the background."""
        return self

    def _forget_uncommitted(self) -> None:
        """Rows of a build that crashed before its commit."""
        for suffix in ("chunks", "sentences"):
            self.client.delete(f"{self.name}_{suffix}", filter=f"generation > {self.state['committed']}")

    def _delete_replaced(self, sources: set[str], generation: int) -> None:
        for batch in _source_batches(sources):
            for suffix in ("chunks", "sentences"):
                self.client.delete(f"{self.name}_{suffix}", filter=f"source in {batch} and generation < {generation}")


def _source_batches(sources: Iterable[str]) -> Iterator[str]:
    """Source names as Milvus filter lists, a few hundred at a time."""
    names = sorted(sources)
    for start in range(0, len(names), _NAMES_PER_FILTER):
        yield json.dumps(names[start : start + _NAMES_PER_FILTER], ensure_ascii=False)


def _count_of(client, collection: str, sources: Iterable[str], where: str) -> int:
    return sum(_count(client, collection, f"source in {batch} and {where}") for batch in _source_batches(sources))


def _check_count(client, name: str, state: dict, uri: str) -> None:
    """The chunks searches see must be the chunks the last build left. Milvus Lite falls back to
    an older manifest when the current one is damaged, and old versions of files become
    searchable again; a build that died between its commit and its clean-up leaves the rows it
    replaced, which the next build removes, so those are not counted."""
    committed, chunks = state["committed"], f"{name}_chunks"
    visible = _count(client, chunks, f"generation <= {committed}")
    if visible != state["count"]:
        rewritten = {row["source"] for row in client.query(chunks, filter=f"generation == {committed}", output_fields=["source"])}
        visible -= _count_of(client, chunks, rewritten, f"generation < {committed}")
    if visible != state["count"]:
        raise CorruptIndexError(f"the Milvus index {name} at {uri} shows {visible} chunks where its last build left "
                                f"{state['count']}: its files are damaged; `rag index` rebuilds it from the seeds")


def _milvus_error() -> type[Exception]:
    from pymilvus.exceptions import MilvusException

    return MilvusException


def _first_line(exc: Exception) -> str:
    text = getattr(exc, "message", "") or str(exc)
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__


def stop_lite(uri: str) -> None:
    """Stop this process's Milvus Lite engine for a file, so the next client reads it from disk
    afresh (the engine keeps the collections it opened in memory)."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(uri)


def _wipe_lite(client, config: Config, exc: Exception):
    """A Milvus Lite file whose collections cannot be opened refuses every call, dropping them
    included; a rebuild removes their folders and starts the engine again. A server is never
    touched this way: its administrator repairs it."""
    uri = uri_of(config)
    folders = [Path(uri) / "collections" / f"{config.milvus_collection}_{s}" for s in ("chunks", "sentences", "meta")]
    if not is_lite(uri) or not any(f.is_dir() for f in folders):
        raise CorruptIndexError(f"Milvus at {uri} cannot drop the collections of {config.milvus_collection} ({_first_line(exc)}); "
                                "repair or drop them on the server, then run `rag index`") from exc
    log.warning("the Milvus Lite collections of %s cannot be opened (%s); removing them to rebuild", config.milvus_collection, _first_line(exc))
    client.close()
    stop_lite(uri)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return connect(config)


def connect(config: Config):
    """A client for the configured Milvus; a failure says what to do about it."""
    uri = uri_of(config)
    # gRPC's C core writes reconnect chatter to stderr (a Lite server answers keepalive pings
    # during a long embedding with GOAWAY, and the client reconnects); failures still raise.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise StoreUnavailableError("store=milvus needs pymilvus: pip install 'zhiwen[milvus]' (pymilvus and milvus-lite)") from exc
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # it logs every failed call with a traceback; ours says why
    if is_lite(uri):
        config.index_dir.mkdir(parents=True, exist_ok=True)
        # Lite's in-process server lacks AllocTimestamp; pymilvus's iterators fall back, but gRPC logs each miss as an error.
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        # Its in-process server logs each failed call with a traceback; the exception reaches us and says it in one line.
        logging.getLogger("milvus_lite.adapter.grpc.servicer").setLevel(logging.CRITICAL)
        logging.getLogger("milvus_lite.server_manager").setLevel(logging.CRITICAL)  # a held file: our error says what to do
    try:
        return MilvusClient(uri=uri, token=config.milvus_token, timeout=config.milvus_timeout)
    except Exception as exc:
        if is_lite(uri):
            raise StoreUnavailableError(
                f"cannot open the Milvus Lite file {uri} ({exc}). Milvus Lite lets one process open a file at a time: "
                f"stop the other one, or serve the file with `milvus-lite server --data-dir {uri} --port 19530` "
                "and set milvus_uri=http://127.0.0.1:19530 in every process"
            ) from exc
        raise StoreUnavailableError(f"cannot reach Milvus at {uri} ({exc}); start it, or check milvus_uri and milvus_token") from exc


def _create_collections(client, name: str, dim: int, config: Config) -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    # Splitting only at our spaces: Lite's "standard" analyzer splits at non-word characters
    # (the terms have none inside but rare ones like 3.5), a server has a whitespace tokenizer.
    analyzer = {"tokenizer": "standard"} if is_lite(uri_of(config)) else {"tokenizer": "whitespace"}
    chunks = MilvusClient.create_schema(auto_id=False)
    chunks.add_field("id", DataType.INT64, is_primary=True)
    chunks.add_field("generation", DataType.INT64)
    chunks.add_field("source", DataType.VARCHAR, max_length=4096)
    chunks.add_field("chunk", DataType.JSON)
    chunks.add_field("terms", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params=analyzer)
    chunks.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    chunks.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    chunks.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type=config.milvus_index, metric_type="IP")
    index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": 1.5, "bm25_b": 0.75})  # the FAISS store's BM25 (stores/bm25.py) uses the same
    index.add_index(field_name="source", index_type="INVERTED")
    index.add_index(field_name="generation", index_type="INVERTED")
    client.create_collection(f"{name}_chunks", schema=chunks, index_params=index)

    sentences = MilvusClient.create_schema(auto_id=True)
    sentences.add_field("id", DataType.INT64, is_primary=True)
    sentences.add_field("chunk_id", DataType.INT64)
    sentences.add_field("row", DataType.INT64)
    sentences.add_field("generation", DataType.INT64)
    sentences.add_field("source", DataType.VARCHAR, max_length=4096)
    sentences.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")  # never searched: read by chunk id
    index.add_index(field_name="chunk_id", index_type="INVERTED")
    client.create_collection(f"{name}_sentences", schema=sentences, index_params=index)

    meta = MilvusClient.create_schema(auto_id=False)
    meta.add_field("key", DataType.VARCHAR, is_primary=True, max_length=4200)
    meta.add_field("value", DataType.JSON)
    meta.add_field("vector", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
    client.create_collection(f"{name}_meta", schema=meta, index_params=index)


def _upsert_meta(client, name: str, items: list[tuple[str, dict]]) -> None:
    for start in range(0, len(items), 1000):
        client.upsert(f"{name}_meta", [{"key": k, "value": v, "vector": [0.0, 0.0]} for k, v in items[start : start + 1000]])


def _count(client, collection: str, filter: str) -> int:
    return int(client.query(collection, filter=filter, output_fields=["count(*)"])[0]["count(*)"])


def _manifest(state: dict, files: dict[str, dict]) -> Manifest:
    return Manifest(
        format_version=state["format_version"], embed_model=state["embed_model"], dim=state["dim"], chunking=state["chunking"],
        files={f: v["hash"] for f, v in files.items()}, count=state["count"], faiss="milvus", built_at=state["built_at"],
        problems={f: v["problem"] for f, v in files.items() if v.get("problem")},
        dates={f: v["date"] for f, v in files.items() if v.get("date")},
    )


def _file_row(manifest: Manifest, name: str) -> dict:
    """What the meta collection keeps of one seed file."""
    return {"hash": manifest.files.get(name), "problem": manifest.problems.get(name, ""), "date": manifest.dates.get(name, "")}


def _chunk(row: dict) -> Chunk:
    data = row["chunk"]
    return Chunk(id=int(row["id"]), **{**data, "sentences": tuple(tuple(s) for s in data["sentences"])})
