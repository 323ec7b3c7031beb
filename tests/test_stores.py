"""Guarantees of the Milvus store that FAISS gets from its files: same ranking, atomic builds, clear failures.

The tests shared by both stores are parametrised in test_index.py and test_retrieve.py.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from rag.config import Config
from rag.index import build, chunk_file
from rag.stores import CorruptIndexError, StoreUnavailableError, open_store
from rag.stores import milvus as milvus_store


def test_both_stores_rank_every_dev_question_the_same(assistant, milvus_assistant, qa_items):
    for item in qa_items:
        faiss_hits = assistant.retrieve(item["question"], k=5)
        milvus_hits = milvus_assistant.retrieve(item["question"], k=5)
        assert [(p.source, p.start) for p in faiss_hits] == [(p.source, p.start) for p in milvus_hits], item["id"]
        assert [p.score for p in faiss_hits] == pytest.approx([p.score for p in milvus_hits], abs=0.01)  # BM25 sums in float32 there


def test_milvus_answers_with_citations(milvus_assistant, qa_items):
    item = next(q for q in qa_items if q["answerable"])
    backend = milvus_assistant.config.llm_backend
    milvus_assistant.configure(llm_backend="extractive")
    try:
        answer = milvus_assistant.ask(item["question"])
    finally:
        milvus_assistant.configure(llm_backend=backend)
    assert not answer.refused
    assert {c.source for c in answer.citations} & set(item["sources"])


@pytest.fixture
def milvus_seeds(tmp_path, seed_files, embedder):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for seed in seed_files[3:]:
        shutil.copy(seed, seeds)
    config = Config(store="milvus", seeds_dir=seeds, index_dir=tmp_path / "index")
    build(seeds, config.index_dir, embedder, config, progress=False)
    return seeds, config


def _texts(config: Config, source: str) -> list[str]:
    return sorted(c.text for c in open_store(config).iter_chunks() if c.source == source)


def _change(seeds, name: str) -> None:
    path = seeds / name
    path.write_text(path.read_text(encoding="utf-8") + "\n另起一段:测试中断的写入是否可见。\n", encoding="utf-8")


def test_a_build_that_dies_before_its_commit_leaves_nothing_visible(milvus_seeds, embedder, seed_files, monkeypatch):
    seeds, config = milvus_seeds
    name = seed_files[3].name
    before = _texts(config, name)
    count = len(open_store(config))
    _change(seeds, name)
    shutil.copy(seed_files[0], seeds)

    real = milvus_store._upsert_meta

    def dies_at_commit(client, collection, items):
        if any(key == milvus_store._STATE for key, _ in items):
            raise ConnectionError("killed before the commit")
        return real(client, collection, items)

    monkeypatch.setattr(milvus_store, "_upsert_meta", dies_at_commit)
    with pytest.raises(ConnectionError):
        build(seeds, config.index_dir, embedder, config, progress=False)
    monkeypatch.setattr(milvus_store, "_upsert_meta", real)

    store = open_store(config)  # the new rows are in Milvus, but no search sees them
    assert len(store) == count and _texts(config, name) == before
    assert not any(c.source == seed_files[0].name for c in store.iter_chunks())
    from rag.text.terms import tokenize

    hits = store.lexical(tokenize("测试中断的写入是否可见"), 50)
    assert not any("测试中断" in c.text for c in store.chunks(i for i, _ in hits).values())

    index, report = build(seeds, config.index_dir, embedder, config, progress=False)  # the next build cleans up
    assert report.added == [seed_files[0].name] and report.changed == [name]
    assert _texts(config, name) == sorted(c.text for c in chunk_file(seeds / name, config))
    assert len(index) == len(list(index.iter_chunks()))


def test_a_build_that_dies_after_its_commit_is_completed_by_the_next(milvus_seeds, embedder, seed_files, monkeypatch):
    seeds, config = milvus_seeds
    name = seed_files[3].name
    _change(seeds, name)

    def dies(self, sources, generation):
        raise ConnectionError("killed after the commit")

    monkeypatch.setattr(milvus_store.MilvusStore, "_delete_replaced", dies)
    with pytest.raises(ConnectionError):
        build(seeds, config.index_dir, embedder, config, progress=False)
    monkeypatch.undo()
    # committed: the new version is searchable (the old one still beside it, until the next build)
    assert any("测试中断" in t for t in _texts(config, name))

    _, report = build(seeds, config.index_dir, embedder, config, progress=False)
    assert report.changed == [name]  # its file record was not yet written, so it is done again
    assert _texts(config, name) == sorted(c.text for c in chunk_file(seeds / name, config))


def test_a_lite_file_held_by_another_process_is_named_with_the_way_out(tmp_path):
    config = Config(store="milvus", index_dir=tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pymilvus import MilvusClient; MilvusClient(sys.argv[1]); "
         "print('open', flush=True); time.sleep(60)", milvus_store.uri_of(config)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        code = ("import sys; from rag.config import Config; from rag.stores import open_store, StoreUnavailableError\n"
                "try:\n    open_store(Config(store='milvus', milvus_uri=sys.argv[1]))\n"
                "except StoreUnavailableError as exc:\n    print(exc)\n")
        result = subprocess.run([sys.executable, "-c", code, milvus_store.uri_of(config)], capture_output=True, text=True, timeout=120)
        out = result.stdout
        assert "one process" in out and "milvus-lite server" in out, out
        assert "Traceback" not in result.stderr, result.stderr
    finally:
        holder.kill()


def test_an_unreachable_server_says_so(tmp_path):
    config = Config(store="milvus", milvus_uri="http://127.0.0.1:9", milvus_timeout=2, index_dir=tmp_path)
    with pytest.raises(StoreUnavailableError, match="cannot reach Milvus at http://127.0.0.1:9"):
        open_store(config)


def _flip_bytes(path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(100, len(data) - 100, 50):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_milvus_lite_files_are_one_line_and_plain_index_repairs_them(milvus_seeds, embedder):
    """The probe: bytes flipped in the chunks' data files made search, index and even index --rebuild
    die with an 81-line traceback naming no file and no fix."""
    seeds, config = milvus_seeds
    store = open_store(config)
    count = len(store)
    store.client.close()
    milvus_store.stop_lite(milvus_store.uri_of(config))  # as a new process would: Lite keeps what it opened in memory
    files = list((milvus_store.Path(milvus_store.uri_of(config)) / "collections" / f"{config.milvus_collection}_chunks").rglob("*.parquet"))
    assert files
    for path in files:
        _flip_bytes(path)
    with pytest.raises(CorruptIndexError, match=r"cannot be read \(.*parquet.*\); `rag index` rebuilds it") as caught:
        open_store(config)
    assert "\n" not in str(caught.value)
    index, report = build(seeds, config.index_dir, embedder, config, progress=False)
    assert len(report.added) == 2 and len(index) == count
    assert len(open_store(config)) == count == len(list(open_store(config).iter_chunks()))


def test_chunks_the_last_build_did_not_leave_are_found_on_open(milvus_seeds, embedder):
    """Milvus Lite falls back to an older manifest when the current one is damaged, and old
    versions of files become searchable beside the new (233 chunks visible instead of 156)."""
    seeds, config = milvus_seeds
    store = open_store(config)
    old = next(iter(store.iter_chunks()))
    row = {"id": store.state["next_id"] + 100, "generation": store.state["committed"], "source": old.source,
           "chunk": {k: v for k, v in milvus_store.dataclasses.asdict(old).items() if k != "id"},
           "terms": "旧 版本", "vector": [0.0] * store.manifest.dim}
    row["vector"][0] = 1.0
    store.client.insert(f"{config.milvus_collection}_chunks", [row])
    store.client.flush(f"{config.milvus_collection}_chunks")
    store.client.close()
    milvus_store.stop_lite(milvus_store.uri_of(config))
    with pytest.raises(CorruptIndexError, match=rf"shows {len(store) + 1} chunks where its last build left {len(store)}"):
        open_store(config)
    index, _ = build(seeds, config.index_dir, embedder, config, progress=False)
    assert len(index) == len(store) == len(list(index.iter_chunks()))
