"""Building the index: scan the seeds folder, chunk what changed, embed it, hand it to the store.

Builds are incremental: chunks and vectors of unchanged seed files stay in the
store, only new or changed files are read and embedded. A lock file keeps two
writers apart; each store applies a build atomically (see `rag/stores/`).
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
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chunk import chunk_articles, sentence_contexts, sentence_spans
from .clean import clean
from .config import Config
from .embed import Embedder
from .loaders import SUPPORTED, is_supported, load, page_at, too_large, unsupported_message
from .loaders.decode import SkippedFileError, UnreadableFileError
from .segment import segment
from .stores import FORMAT_VERSION, IndexMissingError, IndexProblem, Manifest, Store, StoreUnavailableError, Update
from .stores import check_compatible, chunking_params, empty_store, open_store
from .text.terms import tokenize
from .types import Chunk

log = logging.getLogger(__name__)


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
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage: where a build spends its time

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seed_files(seeds_dir: Path) -> dict[str, Path]:
    """Every readable file under the seeds folder, by its path relative to it (`2023/05/page3.pdf`)."""
    return _scan(seeds_dir)[0]


def _scan(seeds_dir: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """(files by relative path, refused entries with the reason). Hidden files and folders are
    skipped; links that lead outside the folder, or round in a loop, are not followed; unknown
    formats are named."""
    if not seeds_dir.is_dir():
        raise FileNotFoundError(f"seeds folder {seeds_dir} does not exist; create it and put articles in it ({' '.join(SUPPORTED)})")
    root = seeds_dir.resolve()
    files, refused = {}, {}
    for folder, subfolders, names in os.walk(seeds_dir):  # links to folders are never walked into
        here = Path(folder)
        for sub in list(subfolders):
            path = here / sub
            if sub.startswith("."):
                subfolders.remove(sub)  # hidden: version control, our own upload partials
            elif path.is_symlink():
                subfolders.remove(sub)  # walked only through its real place, so nothing is read twice
                name = path.relative_to(seeds_dir).as_posix()
                if problem := _link_problem(path, root):
                    refused[name] = f"{name}/: {problem}"
        for file in sorted(names):
            path = here / file
            name = path.relative_to(seeds_dir).as_posix()
            if file.startswith("."):
                continue
            if path.is_symlink() and (problem := _link_problem(path, root)):
                refused[name] = f"{name}: {problem}"
            elif not is_supported(path):
                refused[name] = unsupported_message(name)
            elif path.is_file():
                files[name] = path
    return dict(sorted(files.items())), refused


def _link_problem(link: Path, root: Path) -> str:
    """Why a link in the seeds folder is not followed, or "" when it leads to a place inside it."""
    try:
        target = link.resolve(strict=True)
    except (RuntimeError, OSError) as exc:  # RuntimeError: Python < 3.13 on a loop; OSError: ELOOP, dangling
        if isinstance(exc, FileNotFoundError):
            return f"a link to {os.readlink(link)}, which does not exist; not followed"
        return f"a link that leads round in a loop ({os.readlink(link)}); not followed"
    if not target.is_relative_to(root):
        return f"a link to {target}, outside the seeds folder; not followed"
    return ""


def file_stats(seeds_dir: Path) -> dict[str, tuple[int, int, int, int]]:
    """Size, modification time, inode and change time of every seed file: a cheap check, before each
    question, that nothing changed. A file rewritten with its size and time restored still has a
    new change time (or inode, if replaced); the build then compares contents by hash."""
    stats = {}
    for name, path in seed_files(seeds_dir).items():
        try:
            st = path.stat()
        except OSError:
            continue
        stats[name] = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    return stats


def seeds_changed(index: Store, seeds_dir: Path) -> bool:
    files = seed_files(seeds_dir)
    indexed = index.manifest.files
    return set(files) != set(indexed) or any(file_hash(p) != indexed[name] for name, p in files.items())


def chunk_file(path: Path, config: Config, name: str | None = None) -> list[Chunk]:
    """The chunks of one seed file of any supported format; `name` is its path relative to the seeds folder."""
    return read_file(path, config, name)[0]


def read_file(path: Path, config: Config, name: str | None = None) -> tuple[list[Chunk], str]:
    """The chunks of one seed file and the date its metadata gives ("" when none)."""
    name = name or path.name
    size = path.stat().st_size
    if size > config.max_file_mb * 2**20:
        raise UnreadableFileError(too_large(name, f"{size / 2**20:.1f} MB", config.max_file_mb))
    document = load(path, config.max_file_mb)
    chunks = chunk_articles(segment(name, clean(document.text)), config)
    if len(chunks) > config.max_file_chunks:  # embedding it would hold the indexer for hours
        raise UnreadableFileError(f"{name}: {len(chunks):,} chunks, above the {config.max_file_chunks:,} a file may have (max_file_chunks); "
                                  "split it, or raise max_file_chunks (RAG_MAX_FILE_CHUNKS)")
    if document.pages:
        chunks = [dataclasses.replace(c, page=page_at(document, c.start)) for c in chunks]
    return chunks, document.date


def _chunk_isolated(path: Path, name: str, config: Config) -> tuple[list[Chunk], str, str]:
    """A file's chunks and metadata date, or none and the reason: one bad file never stops the others."""
    try:
        return *read_file(path, config, name), ""
    except SkippedFileError as exc:
        log.warning("%s", exc)
        return [], "", _named(str(exc), path, name)
    except (UnreadableFileError, OSError) as exc:
        log.error("%s", exc)
        return [], "", _named(str(exc), path, name)
    except Exception as exc:
        log.exception("%s: could not be indexed", name)
        return [], "", f"{name}: could not be indexed ({type(exc).__name__}: {exc})"


def _named(message: str, path: Path, name: str) -> str:
    """A loader names the file; in a folder tree the user needs its path within the seeds folder."""
    return name + message[len(path.name):] if name != path.name and message.startswith(path.name) else message


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


class _Nowhere:
    """Where a progress bar nobody sees writes: it still counts, so its state can be reported."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


NOWHERE = _Nowhere()


def build(seeds_dir: Path, index_dir: Path, embedder: Embedder, config: Config, rebuild: bool = False, progress: bool = True,
          watch: Callable[[object], None] | None = None, again: Collection[str] = (), compact: bool = False) -> tuple[Store, BuildReport]:
    """Bring the store in line with the seeds folder, embedding only what changed and the files
    named in `again` (read, chunked and embedded anew); with `compact`, then merge the store's
    segments into one. `watch` is given the build's progress bar (counting even when not shown),
    for a status page."""
    started = time.time()
    report = BuildReport()
    config = config.with_overrides(seeds_dir=seeds_dir, index_dir=index_dir)
    with write_lock(index_dir):
        old = None if rebuild else _reusable(embedder, config)
        files, refused = _scan(seeds_dir)
        for message in refused.values():
            log.warning("%s", message)
        report.problems.update(refused)
        hashes: dict[str, str] = {}
        dates: dict[str, str] = {}  # file -> the date its metadata gives
        new_chunks: list[Chunk] = []
        from tqdm import tqdm

        clock = time.perf_counter()
        # One bar for the whole build: it counts the files as they are read, then the chunks as they are embedded.
        bar = tqdm(total=len(files), desc="indexing: reading", unit="file", disable=not (progress or watch), smoothing=0.1,
                   file=None if progress else NOWHERE)
        if watch is not None:
            watch(bar)
        for name, path in files.items():
            bar.update()
            try:
                digest = file_hash(path)
            except OSError as exc:
                report.problems[name] = f"{name}: cannot be read ({exc.strerror or exc})"
                log.error("%s", report.problems[name])
                continue
            known = old is not None and old.manifest.files.get(name) == digest and name not in again
            if known and name not in old.manifest.problems:
                report.unchanged.append(name)
                hashes[name] = digest
                if name in old.manifest.dates:
                    dates[name] = old.manifest.dates[name]
                continue
            chunks, date, problem = _chunk_isolated(path, name, config)
            hashes[name] = digest  # a failed file is tried again at every build; only a new outcome rewrites
            if date:
                dates[name] = date
            if problem:
                report.problems[name] = problem
            if known and problem == old.manifest.problems.get(name):
                report.unchanged.append(name)  # failed before, fails the same way: nothing to rewrite
                continue
            (report.changed if old is not None and name in old.manifest.files else report.added).append(name)
            new_chunks.extend(chunks)
        if old is not None:
            report.removed = sorted(set(old.manifest.files) - set(files))
            if not report.touched:
                bar.close()
                index = _compacted(old, report) if compact else old
                report.chunks = len(index)
                report.seconds = time.time() - started
                return index, report

        clock = _lap(report, "read and chunk", clock)
        by_file: dict[str, list[Chunk]] = {}
        for chunk in new_chunks:
            by_file.setdefault(chunk.source, []).append(chunk)
        try:
            embedded = _embed_files(by_file, hashes, embedder, config, report, bar)
        except KeyboardInterrupt:
            log.warning("interrupted: the files embedded so far are kept; run `rag index` again to go on from there")
            raise
        finally:
            bar.close()
        clock = time.perf_counter()
        report.embedded = len(new_chunks)
        empty = np.zeros((0, embedder.dim), np.float32)
        new_vectors = np.concatenate([empty, *(embedded[f].vectors for f in by_file)], dtype=np.float32)
        new_sentence_vectors = np.concatenate([empty, *(embedded[f].sentence_vectors for f in by_file)], dtype=np.float32)
        new_tokens = [t for f in by_file for t in embedded[f].tokens]
        del embedded  # the per-group arrays: the vectors are held once while they are written
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            embed_model=embedder.name,
            dim=embedder.dim,
            chunking=chunking_params(config),
            files=hashes,
            count=0,
            faiss="",
            problems={name: report.problems[name] for name in hashes if name in report.problems},
            dates=dates,
        )
        store = old if old is not None else empty_store(config, embedder.name, embedder.dim)
        # Every indexed file not kept as it is: changed, removed, or unreadable now (then absent from `hashes`).
        remove = set(old.manifest.files) - set(report.unchanged) if old is not None else set()
        update = Update(manifest, remove, new_chunks, new_tokens, new_vectors, new_sentence_vectors)
        index = store.write(update)
        _lap(report, "write", clock)
        if compact:
            index = _compacted(index, report)
        shutil.rmtree(index_dir / _PARTIAL, ignore_errors=True)
    report.chunks = len(index)
    report.seconds = time.time() - started
    return index, report


def _compacted(store: Store, report: BuildReport) -> Store:
    clock = time.perf_counter()
    store = store.compact()
    _lap(report, "compact", clock)
    return store


def _lap(report: BuildReport, stage: str, since: float) -> float:
    """Add the time since `since` to a stage (stages done per group add up); returns now."""
    now = time.perf_counter()
    report.timings[stage] = round(report.timings.get(stage, 0.0) + now - since, 2)
    return now


@dataclass
class _Embedded:
    """What indexing computes for one file."""

    vectors: np.ndarray
    sentence_vectors: np.ndarray
    tokens: list[list[str]]


_PARTIAL = ".partial"  # per-file results of a build not yet written, so an interrupted build resumes
_GROUP_CHUNKS = 256  # chunks embedded together: big enough for full batches, small enough to save often


def _embed_files(by_file: dict[str, list[Chunk]], hashes: dict[str, str], embedder: Embedder, config: Config,
                 report: BuildReport, bar) -> dict[str, _Embedded]:
    """Embed the new files in groups, on the build's progress bar, saving each file's result as it is done."""
    partial = config.index_dir / _PARTIAL
    partial.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(json.dumps([embedder.name, chunking_params(config), config.sentence_vectors]).encode()).hexdigest()[:16]
    saved = {name: partial / f"{hashes[name]}-{key}.npz" for name in by_file}
    done = {name: _load_partial(saved[name]) for name in by_file if saved[name].exists()}
    done = {name: result for name, result in done.items() if result is not None and len(result.tokens) == len(by_file[name])}
    if done:
        log.info("resuming: %d of %d files were embedded by an interrupted build", len(done), len(by_file))
    if config.sentence_vectors not in ("pooled", "separate"):
        raise ValueError(f"unknown sentence_vectors {config.sentence_vectors!r}; choose pooled or separate")
    pool = config.sentence_vectors == "pooled"
    total = sum(len(chunks) for chunks in by_file.values())
    todo = [name for name in by_file if name not in done]
    bar.reset(total=total)
    bar.unit = "chunk"
    bar.set_description("indexing")
    bar.update(total - sum(len(by_file[n]) for n in todo))
    for group in _groups(todo, by_file):
        chunks = [c for name in group for c in by_file[name]]
        vectors, sentence_vectors = _embed_chunks(embedder, chunks, pool, report)
        clock = time.perf_counter()
        counts = [len(c.sentences) for c in chunks]
        tokens = [tokenize(c.search_text) for c in chunks]
        clock = _lap(report, "bm25 terms", clock)
        row = sentence_row = 0
        for name in group:
            n = len(by_file[name])
            sentences = sum(counts[row : row + n])
            result = _Embedded(vectors[row : row + n], sentence_vectors[sentence_row : sentence_row + sentences], tokens[row : row + n])
            _save_partial(saved[name], result)
            done[name] = result
            row, sentence_row = row + n, sentence_row + sentences
        bar.update(len(chunks))
        bar.set_postfix_str(f"{len(done)}/{len(by_file)} files")
    return done


def _groups(names: list[str], by_file: dict[str, list[Chunk]]) -> Iterator[list[str]]:
    group, size = [], 0
    for name in names:
        group.append(name)
        size += len(by_file[name])
        if size >= _GROUP_CHUNKS:
            yield group
            group, size = [], 0
    if group:
        yield group


def _save_partial(path: Path, result: _Embedded) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, vectors=result.vectors, sentence_vectors=result.sentence_vectors,
             tokens=np.array(json.dumps(result.tokens, ensure_ascii=False)))
    os.replace(tmp, path)


def _load_partial(path: Path) -> _Embedded | None:
    try:
        with np.load(path) as data:
            return _Embedded(data["vectors"], data["sentence_vectors"], json.loads(str(data["tokens"])))
    except Exception:  # a half-written or foreign file: embed that file again
        return None


def _embed_chunks(embedder: Embedder, chunks: list[Chunk], pool: bool, report: BuildReport) -> tuple[np.ndarray, np.ndarray]:
    """Chunk vectors, and a vector per sentence for evidence selection.

    A mean-pooling model gives both from one pass: each sentence's vector pools its own tokens
    of the chunk ("late chunking"), which halves indexing time. Other models, and sentences that
    truncation cut off, embed each sentence with its title on its own."""
    clock = time.perf_counter()
    with_spans = getattr(embedder, "encode_passages_with_spans", None) if pool else None
    pooled = with_spans([c.search_text for c in chunks], [sentence_spans(c) for c in chunks]) if with_spans else None
    if pooled is None:
        vectors = embedder.encode_passages([c.search_text for c in chunks])
        clock = _lap(report, "embed chunks", clock)
        sentence_vectors = _embed_unique(embedder, [s for c in chunks for s in sentence_contexts(c)])
        _lap(report, "embed sentences", clock)
        return vectors, sentence_vectors
    vectors, per_chunk = pooled
    clock = _lap(report, "embed chunks and sentences", clock)
    sentence_vectors = np.concatenate([np.zeros((0, embedder.dim), np.float32), *per_chunk])
    cut = np.flatnonzero(np.isnan(sentence_vectors[:, 0]))
    if len(cut):
        contexts = [s for c in chunks for s in sentence_contexts(c)]
        sentence_vectors[cut] = _embed_unique(embedder, [contexts[i] for i in cut])
        _lap(report, "embed sentences", clock)
    return vectors, sentence_vectors


def _embed_unique(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Each distinct text once: overlapping chunks share a sentence, and archives repeat paragraphs."""
    if not texts:
        return np.zeros((0, embedder.dim), np.float32)
    unique = list(dict.fromkeys(texts))
    vectors = embedder.encode_passages(unique)
    row = {text: i for i, text in enumerate(unique)}
    return vectors[[row[t] for t in texts]]


def _reusable(embedder: Embedder, config: Config) -> Store | None:
    """The current store if an incremental update can start from it."""
    try:
        old = open_store(config)
        check_compatible(old.manifest, embedder.name, embedder.dim, config)
        return old
    except IndexMissingError:
        return None
    except StoreUnavailableError:
        raise  # nothing to rebuild: the engine itself is out of reach
    except IndexProblem as exc:
        log.warning("rebuilding from scratch: %s", exc)
        return None
