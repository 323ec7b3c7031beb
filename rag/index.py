"""The on-disk index: chunks, their vectors, a FAISS index and a manifest.

Layout: `index/CURRENT` names a generation folder holding every file of one
build. A build writes a new generation and then swaps CURRENT with
`os.replace`, so readers never see a half-written index; a lock file keeps two
writers apart. Builds are incremental: chunks and vectors of unchanged seed
files are reused, only new or changed files are embedded.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chunk import chunk_articles, sentence_contexts
from .clean import SkippedFileError, UnreadableFileError, clean, jieba
from .loaders import SUPPORTED, is_supported, load, page_at, unsupported_message
from .config import Config
from .embed import Embedder
from .segment import segment
from .types import Chunk

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
_FILES = ("chunks.jsonl", "vectors.npy", "sentence_vectors.npy", "faiss.index")
_VERIFIED = ".verified"  # written once a generation's checksums matched; later opens check sizes only


def repair_hint(index_dir: Path) -> str:
    """The command that fixes it, naming the user's own index folder."""
    return f"`rag --index {index_dir} index` rebuilds it from the seeds"


class IndexProblem(RuntimeError):
    """The index cannot be used as it is; the message says how to fix it."""


class IndexMissingError(IndexProblem):
    pass


class CorruptIndexError(IndexProblem):
    pass


class StaleIndexError(IndexProblem):
    pass


@dataclass
class Manifest:
    format_version: int
    embed_model: str
    dim: int
    chunking: dict
    files: dict[str, str]  # seed file name -> sha256
    count: int
    faiss: str
    built_at: float = field(default_factory=time.time)
    problems: dict[str, str] = field(default_factory=dict)  # seed file -> why it holds no chunks
    checksums: dict[str, list] = field(default_factory=dict)  # index file -> [size, sha256]


@dataclass
class BuildReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # file -> message
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def chunking_params(config: Config) -> dict:
    return {"min": config.chunk_min, "max": config.chunk_max, "overlap": config.chunk_overlap_sentences}


class VectorIndex:
    def __init__(
        self, manifest: Manifest, chunks: list[Chunk], tokens: list[list[str]], vectors: np.ndarray, faiss_index,
        sentence_vectors: np.ndarray | None = None,
    ):
        self.manifest = manifest
        self.chunks = chunks
        self.tokens = tokens
        self.vectors = vectors
        self.faiss = faiss_index
        self.sentence_vectors = sentence_vectors if sentence_vectors is not None else np.zeros((0, vectors.shape[1]), np.float32)
        self.sentence_rows = np.concatenate([[0], np.cumsum([len(c.sentences) for c in chunks])]).astype(np.int64)

    def sentence_vectors_of(self, chunk_id: int) -> np.ndarray:
        return self.sentence_vectors[self.sentence_rows[chunk_id] : self.sentence_rows[chunk_id + 1]]

    def __len__(self) -> int:
        return len(self.chunks)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if not self.chunks:
            return []
        scores, ids = self.faiss.search(query.reshape(1, -1).astype(np.float32), min(k, len(self.chunks)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    # ---- persistence -------------------------------------------------------

    def save(self, index_dir: Path) -> Path:
        import faiss

        index_dir.mkdir(parents=True, exist_ok=True)
        generation = index_dir / f"gen-{time.time_ns()}-{os.getpid()}"
        staging = generation.with_name(generation.name + ".tmp")
        staging.mkdir()
        with open(staging / "chunks.jsonl", "w", encoding="utf-8") as f:
            for chunk, tokens in zip(self.chunks, self.tokens):
                f.write(json.dumps({**dataclasses.asdict(chunk), "tokens": tokens}, ensure_ascii=False) + "\n")
        np.save(staging / "vectors.npy", self.vectors)
        np.save(staging / "sentence_vectors.npy", self.sentence_vectors)
        faiss.write_index(self.faiss, str(staging / "faiss.index"))
        self.manifest.checksums = {name: [(staging / name).stat().st_size, _sha256(staging / name)] for name in _FILES}
        (staging / "manifest.json").write_text(json.dumps(dataclasses.asdict(self.manifest), indent=1, ensure_ascii=False))
        _fsync_dir(staging)
        staging.rename(generation)
        pointer = index_dir / "CURRENT.tmp"
        pointer.write_text(generation.name)
        os.replace(pointer, index_dir / "CURRENT")
        _fsync_dir(index_dir)
        _prune(index_dir, keep={generation.name, *_previous(index_dir, generation.name)})
        return generation

    @classmethod
    def load(cls, index_dir: Path) -> "VectorIndex":
        """Open the current generation; any damage is one `CorruptIndexError` naming the file and the fix."""
        import faiss

        pointer = index_dir / "CURRENT"
        if not pointer.exists():
            raise IndexMissingError(f"no index in {index_dir}; build it with `rag --index {index_dir} index`")
        _remove_staging(index_dir)
        name = _read(pointer, index_dir, lambda p: p.read_text(encoding="utf-8").strip())
        generation = index_dir / name
        if not name.startswith("gen-") or "/" in name or not generation.is_dir():
            raise CorruptIndexError(f"the index file {pointer} names no index generation ({name[:40]!r}); {repair_hint(index_dir)}")
        manifest = _read(generation / "manifest.json", index_dir, lambda p: Manifest(**json.loads(p.read_text(encoding="utf-8"))))
        if manifest.format_version != FORMAT_VERSION:
            raise StaleIndexError(
                f"the index in {index_dir} has format {manifest.format_version}, this version reads "
                f"{FORMAT_VERSION}; {repair_hint(index_dir)}"
            )
        _verify(generation, manifest, index_dir)
        chunks, tokens = _read(generation / "chunks.jsonl", index_dir, _read_chunks)
        vectors = _read(generation / "vectors.npy", index_dir, np.load)
        sentence_vectors = _read(generation / "sentence_vectors.npy", index_dir, np.load)
        faiss_index = _read(generation / "faiss.index", index_dir, lambda p: faiss.read_index(str(p)))
        if not (len(chunks) == len(tokens) == vectors.shape[0] == faiss_index.ntotal == manifest.count):
            raise CorruptIndexError(f"the index in {index_dir} is inconsistent (counts differ); {repair_hint(index_dir)}")
        index = cls(manifest, chunks, tokens, vectors, faiss_index, sentence_vectors)
        if index.sentence_rows[-1] != len(sentence_vectors):
            raise CorruptIndexError(f"the index in {index_dir} is inconsistent (sentence counts differ); {repair_hint(index_dir)}")
        return index

    def check_compatible(self, embedder: Embedder, config: Config) -> None:
        m = self.manifest
        if m.embed_model != embedder.name or m.dim != embedder.dim:
            raise StaleIndexError(
                f"the index was built with {m.embed_model} ({m.dim}-d) but the configured model is "
                f"{embedder.name} ({embedder.dim}-d); {repair_hint(Path(config.index_dir))}"
            )
        if m.chunking != chunking_params(config):
            raise StaleIndexError(f"the index was built with chunking {m.chunking}, configured {chunking_params(config)}; {repair_hint(Path(config.index_dir))}")


def make_faiss(vectors: np.ndarray, config: Config):
    """Exact inner product for small corpora; HNSW or IVF above `ann_threshold` chunks."""
    import faiss

    n, dim = vectors.shape
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if n <= config.ann_threshold:
        index = faiss.IndexFlatIP(dim)
    elif config.ann == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = config.hnsw_ef_search
    elif config.ann == "ivf":
        nlist = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)]
        index.train(sample)
        index.nprobe = config.ivf_nprobe
    else:
        raise ValueError(f"unknown ann index {config.ann!r}; choose hnsw or ivf")
    if n:
        index.add(vectors)
    return index


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seed_files(seeds_dir: Path) -> dict[str, Path]:
    """Every readable file under the seeds folder, by its path relative to it (`2023/05/page3.pdf`)."""
    return _scan(seeds_dir)[0]


def _scan(seeds_dir: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """(files by relative path, refused entries with the reason). Hidden files and folders are
    skipped; links that lead outside the folder are not followed; unknown formats are named."""
    if not seeds_dir.is_dir():
        raise FileNotFoundError(f"seeds folder {seeds_dir} does not exist; create it and put articles in it ({' '.join(SUPPORTED)})")
    root = seeds_dir.resolve()
    files, refused = {}, {}
    for folder, subfolders, names in os.walk(seeds_dir):
        here = Path(folder)
        for sub in list(subfolders):
            path = here / sub
            if sub.startswith("."):
                subfolders.remove(sub)  # hidden: version control, our own upload partials
            elif path.is_symlink():
                subfolders.remove(sub)  # walked only through its real place, so nothing is read twice
                if not path.resolve().is_relative_to(root):
                    name = path.relative_to(seeds_dir).as_posix()
                    refused[name] = f"{name}/: a link to {path.resolve()}, outside the seeds folder; not followed"
        for file in sorted(names):
            path = here / file
            name = path.relative_to(seeds_dir).as_posix()
            if file.startswith("."):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                refused[name] = f"{name}: a link to {path.resolve()}, outside the seeds folder; not followed"
            elif not is_supported(path):
                refused[name] = unsupported_message(name)
            elif path.is_file():
                files[name] = path
    return dict(sorted(files.items())), refused


def file_stats(seeds_dir: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every seed file: a cheap check, before each question, that nothing changed."""
    stats = {}
    for name, path in seed_files(seeds_dir).items():
        try:
            st = path.stat()
        except OSError:
            continue
        stats[name] = (st.st_size, st.st_mtime_ns)
    return stats


def seeds_changed(index: VectorIndex, seeds_dir: Path) -> bool:
    files = seed_files(seeds_dir)
    indexed = index.manifest.files
    return set(files) != set(indexed) or any(file_hash(p) != indexed[name] for name, p in files.items())


def chunk_file(path: Path, config: Config, name: str | None = None) -> list[Chunk]:
    """The chunks of one seed file of any supported format; `name` is its path relative to the seeds folder."""
    name = name or path.name
    size = path.stat().st_size
    if size > config.max_file_mb * 2**20:
        raise UnreadableFileError(
            f"{name}: {size / 2**20:.1f} MB is above the {config.max_file_mb:g} MB limit for one file; "
            "split it, or raise max_file_mb (RAG_MAX_FILE_MB)"
        )
    document = load(path)
    chunks = chunk_articles(segment(name, clean(document.text)), config)
    if document.pages:
        chunks = [dataclasses.replace(c, page=page_at(document, c.start)) for c in chunks]
    return chunks


def _chunk_isolated(path: Path, name: str, config: Config) -> tuple[list[Chunk], str]:
    """A file's chunks, or none and the reason: one bad file never stops the others."""
    try:
        return chunk_file(path, config, name), ""
    except SkippedFileError as exc:
        log.warning("%s", exc)
        return [], _named(str(exc), path, name)
    except (UnreadableFileError, OSError) as exc:
        log.error("%s", exc)
        return [], _named(str(exc), path, name)
    except Exception as exc:
        log.exception("%s: could not be indexed", name)
        return [], f"{name}: could not be indexed ({type(exc).__name__}: {exc})"


def _named(message: str, path: Path, name: str) -> str:
    """A loader names the file; in a folder tree the user needs its path within the seeds folder."""
    return name + message[len(path.name):] if name != path.name and message.startswith(path.name) else message


def tokenize(text: str) -> list[str]:
    """BM25 terms: jieba's search-mode words of the simplified text, punctuation dropped."""
    return [t for t in jieba().cut_for_search(text) if t.strip() and any(c.isalnum() for c in t)]


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            log.warning("waiting for %s, which is writing the index in %s, to finish", holder, index_dir)
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"process {os.getpid()} (rag index)")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(seeds_dir: Path, index_dir: Path, embedder: Embedder, config: Config, rebuild: bool = False, progress: bool = True) -> tuple[VectorIndex, BuildReport]:
    """Bring the index in line with the seeds folder, embedding only what changed."""
    started = time.time()
    report = BuildReport()
    with write_lock(index_dir):
        old = None if rebuild else _reusable(index_dir, embedder, config)
        old_by_file: dict[str, list[int]] = {}
        if old is not None:
            for i, c in enumerate(old.chunks):
                old_by_file.setdefault(c.source, []).append(i)
        files, refused = _scan(seeds_dir)
        for message in refused.values():
            log.warning("%s", message)
        report.problems.update(refused)
        hashes: dict[str, str] = {}
        keep_rows: list[int] = []
        new_chunks: list[Chunk] = []
        from tqdm import tqdm

        for name, path in tqdm(files.items(), desc="reading files", unit="file", disable=not progress or len(files) < 2):
            try:
                digest = file_hash(path)
            except OSError as exc:
                report.problems[name] = f"{name}: cannot be read ({exc.strerror or exc})"
                log.error("%s", report.problems[name])
                continue
            known = old is not None and old.manifest.files.get(name) == digest
            if known and name not in old.manifest.problems:
                report.unchanged.append(name)
                keep_rows.extend(old_by_file.get(name, []))
                hashes[name] = digest
                continue
            chunks, problem = _chunk_isolated(path, name, config)
            hashes[name] = digest  # a failed file is tried again at every build; only a new outcome rewrites
            if problem:
                report.problems[name] = problem
            if known and problem == old.manifest.problems.get(name):
                report.unchanged.append(name)  # failed before, fails the same way: nothing to rewrite
                continue
            (report.changed if old is not None and name in old.manifest.files else report.added).append(name)
            new_chunks.extend(chunks)
        if old is not None:
            report.removed = sorted(set(old.manifest.files) - set(files))
        if old is not None and not report.touched and not rebuild:
            report.chunks = len(old)
            report.seconds = time.time() - started
            return old, report

        texts = [c.search_text for c in new_chunks]
        contexts = [s for c in new_chunks for s in sentence_contexts(c)]
        empty = np.zeros((0, embedder.dim), np.float32)
        new_vectors = embedder.encode_passages(texts, progress=progress) if texts else empty
        new_sentence_vectors = embedder.encode_passages(contexts, progress=progress) if contexts else empty
        report.embedded = len(new_chunks)
        new_tokens = [tokenize(t) for t in tqdm(texts, desc="bm25 terms", unit="chunk", disable=not progress or not texts)]
        kept_chunks = [old.chunks[i] for i in keep_rows] if old is not None else []
        kept_tokens = [old.tokens[i] for i in keep_rows] if old is not None else []
        kept_vectors = old.vectors[keep_rows] if old is not None else empty
        kept_sentences = [old.sentence_vectors_of(i) for i in keep_rows] if old is not None else []
        chunks = [dataclasses.replace(c, id=i) for i, c in enumerate(kept_chunks + new_chunks)]
        vectors = np.concatenate([kept_vectors, new_vectors]).astype(np.float32)
        faiss_index = make_faiss(vectors, config)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            embed_model=embedder.name,
            dim=embedder.dim,
            chunking=chunking_params(config),
            files=hashes,
            count=len(chunks),
            faiss=type(faiss_index).__name__,
            problems={name: report.problems[name] for name in hashes if name in report.problems},
        )
        sentence_vectors = np.concatenate([empty, *kept_sentences, new_sentence_vectors]).astype(np.float32)
        index = VectorIndex(manifest, chunks, kept_tokens + new_tokens, vectors, faiss_index, sentence_vectors)
        index.save(index_dir)
    report.chunks = len(chunks)
    report.seconds = time.time() - started
    return index, report


def _reusable(index_dir: Path, embedder: Embedder, config: Config) -> VectorIndex | None:
    """The current index if an incremental update can start from it."""
    try:
        old = VectorIndex.load(index_dir)
        old.check_compatible(embedder, config)
        return old
    except IndexMissingError:
        return None
    except IndexProblem as exc:
        log.warning("rebuilding from scratch: %s", exc)
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _previous(index_dir: Path, current: str) -> list[str]:
    gens = sorted((p.name for p in index_dir.glob("gen-*") if not p.name.endswith(".tmp")), key=_gen_time)
    older = [g for g in gens if g != current]
    return older[-1:]  # keep one previous generation for readers still loading it


def _gen_time(name: str) -> int:
    return int(name.split("-")[1])


def _prune(index_dir: Path, keep: set[str]) -> None:
    for path in index_dir.glob("gen-*"):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _read(path: Path, index_dir: Path, reader):
    """Run `reader(path)`; whatever goes wrong becomes one line naming the file and the fix."""
    try:
        return reader(path)
    except Exception as exc:
        raise CorruptIndexError(
            f"the index file {path} is unreadable ({type(exc).__name__}: {str(exc)[:120]}); {repair_hint(index_dir)}"
        ) from exc


def _read_chunks(path: Path) -> tuple[list[Chunk], list[list[str]]]:
    chunks, tokens = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            tokens.append(row.pop("tokens"))
            row["sentences"] = tuple(tuple(span) for span in row["sentences"])
            chunks.append(Chunk(**row))
    return chunks, tokens


def _verify(generation: Path, manifest: Manifest, index_dir: Path) -> None:
    """Sizes at every open; sha256 of every file once per generation, then a marker says it was done."""
    for name, (size, _) in manifest.checksums.items():
        path = generation / name
        actual = path.stat().st_size if path.exists() else -1
        if actual != size:
            raise CorruptIndexError(f"the index file {path} has {actual} bytes, {size} were written; {repair_hint(index_dir)}")
    if not manifest.checksums or (generation / _VERIFIED).exists():
        return
    for name, (_, digest) in manifest.checksums.items():
        if _sha256(generation / name) != digest:
            raise CorruptIndexError(f"the index file {generation / name} is damaged (checksum differs); {repair_hint(index_dir)}")
    try:
        (generation / _VERIFIED).touch()
    except OSError:
        pass  # a read-only index is checked again next time


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _remove_staging(index_dir: Path) -> None:
    """Staging folders a crashed build left behind; only when no writer holds the lock."""
    if not any(index_dir.glob("*.tmp")):
        return
    try:
        with open(index_dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                for path in index_dir.glob("*.tmp"):
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
                    log.info("removed %s, left by an interrupted build", path.name)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    except OSError:
        pass  # a writer is busy (its staging is live) or the folder is read-only
