from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

from rag.config import Config
from rag.index import build, chunk_file
from rag.text.terms import tokenize
from rag.stores import CorruptIndexError, IndexMissingError, Manifest, StaleIndexError, check_compatible, open_store
from rag.stores.bm25 import Bm25
from rag.stores.faiss import FaissStore, make_faiss
from rag.types import Chunk

from conftest import as_before_segments, segment_dir


@pytest.fixture
def small(tmp_path, seed_files):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for seed in seed_files[3:]:
        shutil.copy(seed, seeds)
    return seeds, tmp_path / "index"


@pytest.fixture(params=["faiss", "milvus"])
def store(request) -> Config:
    """The same tests run against each store: FAISS files, and Milvus Lite (a local .db)."""
    return Config(store=request.param)


def _sentence_vectors(index, source: str) -> dict[str, np.ndarray]:
    return {c.text: index.sentence_vectors_of(c.id) for c in index.iter_chunks() if c.source == source}


def test_build_writes_a_complete_index(small, embedder, store):
    seeds, index_dir = small
    index, report = build(seeds, index_dir, embedder, store, progress=False)
    assert report.added == sorted(p.name for p in seeds.iterdir())
    loaded = open_store(store.with_overrides(index_dir=index_dir))
    assert type(loaded) is type(index)
    assert len(loaded) == len(index) == report.chunks > 0
    assert loaded.manifest.embed_model == embedder.name and loaded.manifest.dim == embedder.dim
    assert set(loaded.manifest.files) == {p.name for p in seeds.iterdir()}
    chunks = list(loaded.iter_chunks())
    assert len({c.id for c in chunks}) == len(chunks) == len(loaded)
    # every chunk is found by its own text, densely and by its BM25 terms, and carries one vector per sentence
    for chunk in chunks[:: max(1, len(chunks) // 5)]:
        vector = embedder.encode_passages([chunk.search_text], progress=False)[0]
        assert loaded.dense(vector, 3)[0][0] == chunk.id
        assert chunk.id in [i for i, _ in loaded.lexical(tokenize(chunk.search_text), 3)]
        assert loaded.sentence_vectors_of(chunk.id).shape == (len(chunk.sentences), embedder.dim)
        assert loaded.chunks([chunk.id]) == {chunk.id: chunk}


def test_update_embeds_only_new_or_changed_files(small, embedder, seed_files, store):
    seeds, index_dir = small
    first, _ = build(seeds, index_dir, embedder, store, progress=False)
    kept_before = _sentence_vectors(first, seed_files[4].name)

    _, again = build(seeds, index_dir, embedder, store, progress=False)
    assert again.embedded == 0 and not again.touched

    shutil.copy(seed_files[0], seeds)
    changed = seeds / seed_files[3].name
    changed.write_text(changed.read_text(encoding="utf-8") + "\n新增一段:测试增量索引的段落。\n", encoding="utf-8")
    index, report = build(seeds, index_dir, embedder, store, progress=False)
    assert report.added == [seed_files[0].name] and report.changed == [changed.name]
    assert report.unchanged == [seed_files[4].name]
    chunks = list(index.iter_chunks())
    assert len(chunks) == len(index)
    new_count = sum(c.source in (seed_files[0].name, changed.name) for c in chunks)
    assert report.embedded == new_count
    assert any("测试增量索引" in c.text for c in chunks)
    # the changed file's old version is gone, not kept beside the new one
    assert sorted(c.text for c in chunks if c.source == changed.name) == sorted(c.text for c in chunk_file(changed, store))
    # the reused file keeps its vectors
    kept_after = _sentence_vectors(index, seed_files[4].name)
    assert kept_after.keys() == kept_before.keys()
    assert all(np.allclose(kept_before[t], kept_after[t]) for t in kept_before)

    (seeds / seed_files[0].name).unlink()
    index, report = build(seeds, index_dir, embedder, store, progress=False)
    assert report.removed == [seed_files[0].name] and report.embedded == 0
    assert all(c.source != seed_files[0].name for c in index.iter_chunks())
    assert seed_files[0].name not in open_store(store.with_overrides(index_dir=index_dir)).manifest.files


def test_bad_files_are_reported_not_fatal(small, embedder, store):
    seeds, index_dir = small
    (seeds / "empty.txt").write_bytes(b"")
    (seeds / "broken.txt").write_bytes(bytes(range(0x80, 0x100)) * 10)
    index, report = build(seeds, index_dir, embedder, store, progress=False)
    assert set(report.problems) == {"empty.txt", "broken.txt"}
    assert "broken.txt" in report.problems["broken.txt"]
    assert len(index) > 0


def test_missing_corrupt_and_stale_indexes_say_how_to_rebuild(small, embedder):
    seeds, index_dir = small
    with pytest.raises(IndexMissingError, match=r"rag --index \S+ index"):
        FaissStore.load(index_dir)
    build(seeds, index_dir, embedder, Config(), progress=False)
    generation = index_dir / (index_dir / "CURRENT").read_text()

    manifest = json.loads((generation / "manifest.json").read_text())
    (generation / "manifest.json").write_text(json.dumps({**manifest, "format_version": 999}))
    with pytest.raises(StaleIndexError, match=r"rag --index \S+ index"):
        FaissStore.load(index_dir)

    (generation / "manifest.json").write_text(json.dumps(manifest))
    check_compatible(FaissStore.load(index_dir).manifest, embedder.name, embedder.dim, Config())
    with pytest.raises(StaleIndexError, match="rebuild"):
        check_compatible(FaissStore.load(index_dir).manifest, embedder.name, embedder.dim, Config(chunk_max=500))

    (segment_dir(index_dir) / "vectors.npy").write_bytes(b"not numpy")
    with pytest.raises(CorruptIndexError, match=r"rag --index \S+ index"):
        FaissStore.load(index_dir)
    # a corrupt index is rebuilt from scratch rather than trusted
    index, report = build(seeds, index_dir, embedder, Config(), progress=False)
    assert report.embedded == len(index) > 0


def test_concurrent_builds_leave_one_consistent_index(small, embedder):
    seeds, index_dir = small
    errors = []

    def run():
        try:
            build(seeds, index_dir, embedder, Config(), progress=False)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    index = FaissStore.load(index_dir)
    assert len(index) == sum(s.faiss.ntotal for s in index.segments)
    generations = [p for p in index_dir.glob("gen-*")]
    assert len(generations) <= 2 and not any(p.name.endswith(".tmp") for p in generations)


@pytest.mark.parametrize("ann, kind", [("hnsw", "IndexHNSWFlat"), ("ivf", "IndexIVFFlat")])
def test_large_corpora_switch_to_an_approximate_index(ann, kind):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    flat = make_faiss(vectors, Config(ann_threshold=5000, ann=ann))
    approx = make_faiss(vectors, Config(ann_threshold=1000, ann=ann))
    assert type(flat).__name__ == "IndexFlatIP" and type(approx).__name__ == kind
    _, exact_ids = flat.search(vectors[:50], 1)
    _, approx_ids = approx.search(vectors[:50], 1)
    assert (exact_ids[:, 0] == np.arange(50)).all() and (approx_ids[:, 0] == np.arange(50)).mean() >= 0.9


class _Counting:
    """The real embedder, counting what it is asked to embed; `fail_after` calls raise Ctrl-C."""

    def __init__(self, embedder, fail_after: int | None = None):
        self.embedder, self.fail_after, self.calls, self.texts = embedder, fail_after, 0, 0
        self.name, self.dim = embedder.name, embedder.dim

    def encode_passages(self, texts, progress=False):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt
        self.texts += len(texts)
        return self.embedder.encode_passages(texts)

    def encode_queries(self, texts):
        return self.embedder.encode_queries(texts)


def test_an_interrupted_build_resumes_without_embedding_finished_files_again(tmp_path, seed_files, embedder, monkeypatch):
    import rag.index

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for seed in seed_files:
        shutil.copy(seed, seeds)
    monkeypatch.setattr(rag.index, "_GROUP_CHUNKS", 1)  # a group per file
    with pytest.raises(KeyboardInterrupt):
        build(seeds, tmp_path / "index", _Counting(embedder, fail_after=4), Config(), progress=False)  # 2 files done
    with pytest.raises(IndexMissingError):
        FaissStore.load(tmp_path / "index")  # nothing half-written became the index

    resumed = _Counting(embedder)
    index, report = build(seeds, tmp_path / "index", resumed, Config(), progress=False)
    fresh = _Counting(embedder)
    build(seeds, tmp_path / "fresh", fresh, Config(), progress=False, rebuild=True)
    finished = [c for c in index.iter_chunks() if c.source in {seed_files[0].name, seed_files[1].name}]
    assert resumed.calls == 2 * 3 and resumed.texts < fresh.texts  # only the three unfinished files
    assert report.embedded == len(index) and len(report.added) == 5
    assert not (tmp_path / "index" / ".partial").exists()
    reference = FaissStore.load(tmp_path / "fresh")
    for chunk in finished:  # resumed from what was saved, the same vectors a clean build computes
        twin = next(c for c in reference.iter_chunks() if (c.source, c.start) == (chunk.source, chunk.start))
        assert np.allclose(index.sentence_vectors_of(chunk.id), reference.sentence_vectors_of(twin.id), atol=1e-5)


def test_opening_maps_the_saved_term_counts_instead_of_recounting_every_term(small, embedder, monkeypatch):
    seeds, index_dir = small
    built, _ = build(seeds, index_dir, embedder, Config(), progress=False)
    monkeypatch.setattr(Bm25, "from_tokens", lambda *a, **k: pytest.fail("BM25 was recounted at open"))
    loaded = FaissStore.load(index_dir)
    assert isinstance(loaded.segments[0].sentence_vectors, np.memmap)  # sentence vectors are paged in on demand
    assert isinstance(loaded.segments[0].terms.rows, np.memmap)  # and so are the postings
    for chunk in list(built.iter_chunks())[::7]:
        terms = tokenize(chunk.search_text)
        mapped, counted = loaded.lexical(terms, 10), built.lexical(terms, 10)
        assert [i for i, _ in mapped] == [i for i, _ in counted]
        assert [s for _, s in mapped] == pytest.approx([s for _, s in counted])


def test_an_index_saved_with_its_terms_as_text_still_opens_and_ranks_the_same(small, embedder):
    """Generations written before term counts were kept (tokens.jsonl) open without a rebuild."""
    seeds, index_dir = small
    built, _ = build(seeds, index_dir, embedder, Config(), progress=False)
    generation = as_before_segments(index_dir)
    shutil.rmtree(generation / "terms")
    manifest = json.loads((generation / "manifest.json").read_text())
    manifest["checksums"] = {k: v for k, v in manifest["checksums"].items() if not k.startswith("terms/")}
    (generation / "manifest.json").write_text(json.dumps(manifest))
    with open(generation / "tokens.jsonl", "w", encoding="utf-8") as f:
        for chunk in built.iter_chunks():
            f.write(json.dumps(tokenize(chunk.search_text), ensure_ascii=False) + "\n")
    old = FaissStore.load(index_dir)
    for chunk in list(built.iter_chunks())[::7]:
        terms = tokenize(chunk.search_text)
        assert [i for i, _ in old.lexical(terms, 10)] == [i for i, _ in built.lexical(terms, 10)]


def _ranked(store, query: str) -> list[tuple[tuple[str, int], float]]:
    """BM25 hits by (file, offset), which do not depend on how chunk ids were given out."""
    hits = store.lexical(tokenize(query), 20)
    found = store.chunks(i for i, _ in hits)
    return [((found[i].source, found[i].start), round(s, 4)) for i, s in hits]


def test_a_build_that_adds_or_changes_files_writes_a_segment_for_them_and_leaves_the_others_on_disk(small, embedder, seed_files):
    seeds, index_dir = small
    first, _ = build(seeds, index_dir, embedder, Config(), progress=False)
    base = segment_dir(index_dir)
    written = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in base.rglob("*") if p.is_file() and p.name != ".verified"}
    shutil.copy(seed_files[0], seeds)
    changed = sorted(seeds.glob("*.txt"))[-1]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n本报讯 测试市总工会今年为职工发放帮扶金320万元。\n", encoding="utf-8")
    grown, report = build(seeds, index_dir, embedder, Config(), progress=False)
    assert report.added == [seed_files[0].name] and report.changed == [changed.name]
    assert [s.name for s in grown.segments] == [base.name, segment_dir(index_dir, 1).name]
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in base.rglob("*") if p.is_file() and p.name != ".verified"} == written  # not rewritten
    assert {c.source for c in grown.segments[1].chunks} == {seed_files[0].name, changed.name}
    assert not any(c.source == changed.name for c in grown.iter_chunks() if c.id < len(first))  # its old chunks are deleted
    fresh, _ = build(seeds, index_dir.with_name("fresh"), embedder, Config(), progress=False)
    assert len(grown) == len(fresh) and len(FaissStore.load(index_dir)) == len(grown)
    for chunk in list(grown.iter_chunks())[::9]:  # every live row is found by its own vector, and ranks as in a fresh build
        assert grown.dense(grown.vectors_of(np.array([chunk.id]))[0], 1)[0][0] == chunk.id
        assert _ranked(grown, chunk.search_text[:30]) == _ranked(fresh, chunk.search_text[:30])


def _article(i: int) -> str:
    return f"测试{i}县总工会举办技能比赛\n\n本报讯 测试{i}县总工会日前举办职工技能比赛，共有{80 + i}名职工参赛。\n"


def test_past_max_segments_the_small_ones_merge_and_compaction_drops_deleted_rows(small, embedder):
    seeds, index_dir = small
    config = Config(max_segments=2)
    first, _ = build(seeds, index_dir, embedder, config, progress=False)
    base = segment_dir(index_dir)
    for i in range(3):  # three small appends: past two segments the appended ones merge, the first stays
        (seeds / f"add{i}.txt").write_text(_article(i), encoding="utf-8")
        grown, _ = build(seeds, index_dir, embedder, config, progress=False)
        assert len(grown.segments) <= 2 and grown.segments[0].name == base.name
    (seeds / "add0.txt").unlink()
    (seeds / "add3.txt").write_text(_article(3), encoding="utf-8")
    merged, _ = build(seeds, index_dir, embedder, config, progress=False)
    assert len(merged.segments) == 2 and merged.segments[0].name == base.name
    assert {c.source for c in merged.segments[1].chunks} == {"add1.txt", "add2.txt", "add3.txt"}  # the deleted rows dropped
    assert len(merged) == len(first) + len(merged.segments[1])
    compact = FaissStore.load(index_dir, Config(ann_threshold=len(merged) - 1, ann="hnsw")).compact()
    assert len(compact.segments) == 1 and type(compact.segments[0].faiss).__name__ == "IndexHNSWFlat"
    assert [c.id for c in compact.iter_chunks()] == list(range(len(merged)))
    reopened = FaissStore.load(index_dir)
    assert [(c.source, c.start) for c in reopened.iter_chunks()] == [(c.source, c.start) for c in merged.iter_chunks()]
    for chunk in list(reopened.iter_chunks())[::5]:
        assert _ranked(reopened, chunk.search_text[:30]) == _ranked(merged, chunk.search_text[:30])


def test_an_index_written_before_segments_opens_and_its_next_build_moves_it_to_segments(small, embedder, seed_files):
    seeds, index_dir = small
    built, _ = build(seeds, index_dir, embedder, Config(), progress=False)
    as_before_segments(index_dir)
    old = FaissStore.load(index_dir)
    assert old.legacy and len(old) == len(built)
    shutil.copy(seed_files[0], seeds)
    grown, report = build(seeds, index_dir, embedder, Config(), progress=False)
    assert report.embedded == len([c for c in grown.iter_chunks() if c.source == seed_files[0].name])  # only the new file
    assert len(grown.segments) == 1 and not FaissStore.load(index_dir).legacy


def test_deleted_rows_do_not_take_the_places_of_live_ones_in_a_dense_search():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(i, "a.txt", "", "t", "t", 0, 1) for i in range(300)]
    query = vectors[0]
    nearest = np.argsort(-(vectors @ query))
    store = FaissStore.in_memory(Manifest(2, "", 16, {}, {}, 300, ""), chunks, Bm25.from_tokens([["t"]] * 300), vectors)
    deleted = FaissStore(store.manifest, store.segments, nearest[:150])  # the 150 nearest are gone
    assert [i for i, _ in deleted.dense(query, 10)] == nearest[150:160].tolist()
    assert [i for i, _ in deleted.dense(query, 10, within=nearest[140:200].tolist())] == nearest[150:160].tolist()
    assert len(deleted) == 150 and not set(deleted.chunks(nearest[:150].tolist()))
