from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

from rag.config import Config
from rag.index import CorruptIndexError, IndexMissingError, StaleIndexError, VectorIndex, build, make_faiss


@pytest.fixture
def small(tmp_path, seed_files):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for seed in seed_files[3:]:
        shutil.copy(seed, seeds)
    return seeds, tmp_path / "index"


def test_build_writes_a_complete_index(small, embedder):
    seeds, index_dir = small
    index, report = build(seeds, index_dir, embedder, Config(), progress=False)
    assert report.added == sorted(p.name for p in seeds.iterdir())
    loaded = VectorIndex.load(index_dir)
    assert len(loaded) == len(index) == report.chunks > 0
    assert loaded.manifest.embed_model == embedder.name and loaded.manifest.dim == embedder.dim
    assert set(loaded.manifest.files) == {p.name for p in seeds.iterdir()}
    assert np.allclose(loaded.vectors, index.vectors)
    assert [c.id for c in loaded.chunks] == list(range(len(loaded)))


def test_update_embeds_only_new_or_changed_files(small, embedder, seed_files):
    seeds, index_dir = small
    first, _ = build(seeds, index_dir, embedder, Config(), progress=False)

    _, again = build(seeds, index_dir, embedder, Config(), progress=False)
    assert again.embedded == 0 and not again.touched

    shutil.copy(seed_files[0], seeds)
    changed = seeds / seed_files[3].name
    changed.write_text(changed.read_text(encoding="utf-8") + "\n新增一段:测试增量索引的段落。\n", encoding="utf-8")
    index, report = build(seeds, index_dir, embedder, Config(), progress=False)
    assert report.added == [seed_files[0].name] and report.changed == [changed.name]
    assert report.unchanged == [seed_files[4].name]
    new_count = sum(c.source in (seed_files[0].name, changed.name) for c in index.chunks)
    assert report.embedded == new_count
    assert any("测试增量索引" in c.text for c in index.chunks)
    # the reused file keeps its vectors
    old_rows = [i for i, c in enumerate(first.chunks) if c.source == seed_files[4].name]
    new_rows = [i for i, c in enumerate(index.chunks) if c.source == seed_files[4].name]
    assert np.allclose(first.vectors[old_rows], index.vectors[new_rows])

    (seeds / seed_files[0].name).unlink()
    index, report = build(seeds, index_dir, embedder, Config(), progress=False)
    assert report.removed == [seed_files[0].name] and report.embedded == 0
    assert all(c.source != seed_files[0].name for c in index.chunks)


def test_bad_files_are_reported_not_fatal(small, embedder):
    seeds, index_dir = small
    (seeds / "empty.txt").write_bytes(b"")
    (seeds / "broken.txt").write_bytes(bytes(range(0x80, 0x100)) * 10)
    index, report = build(seeds, index_dir, embedder, Config(), progress=False)
    assert set(report.problems) == {"empty.txt", "broken.txt"}
    assert "broken.txt" in report.problems["broken.txt"]
    assert len(index) > 0


def test_missing_corrupt_and_stale_indexes_say_how_to_rebuild(small, embedder):
    seeds, index_dir = small
    with pytest.raises(IndexMissingError, match=r"rag --index \S+ index"):
        VectorIndex.load(index_dir)
    build(seeds, index_dir, embedder, Config(), progress=False)
    generation = index_dir / (index_dir / "CURRENT").read_text()

    manifest = json.loads((generation / "manifest.json").read_text())
    (generation / "manifest.json").write_text(json.dumps({**manifest, "format_version": 999}))
    with pytest.raises(StaleIndexError, match=r"rag --index \S+ index"):
        VectorIndex.load(index_dir)

    (generation / "manifest.json").write_text(json.dumps(manifest))
    VectorIndex.load(index_dir).check_compatible(embedder, Config())
    with pytest.raises(StaleIndexError, match="rebuild"):
        VectorIndex.load(index_dir).check_compatible(embedder, Config(chunk_max=500))

    (generation / "vectors.npy").write_bytes(b"not numpy")
    with pytest.raises(CorruptIndexError, match=r"rag --index \S+ index"):
        VectorIndex.load(index_dir)
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
    index = VectorIndex.load(index_dir)
    assert len(index) == index.faiss.ntotal
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
