"""The archive's articles as a user manages them: a catalogue built from the index, and a trash.

The catalogue is one pass over the store's chunks (source, title, article, pages, chunk
count), plus the dateline and reporter the article's first chunk states (else the date its file's
metadata gives: a web page's, a PDF's or Word file's creation date) and the problem the
indexer recorded for a file it could not read; it is built once per index generation, so
listing and filtering 20,000 articles is a walk over a list. Deleting moves the file into
`.trash/` inside the seeds folder (hidden: the indexer skips it, so the next update drops its
chunks and vectors from FAISS or Milvus alike); restoring moves it back.
"""
from __future__ import annotations

import re
import shutil
import threading
import time
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

from ..text.script import HAN_CHARS, in_script, to_search_form
from ..types import Scope

TRASH = ".trash"
_DATE = re.compile(r"((?:19|20)\d\d)\s*[年.\-/]\s*(\d{1,2})\s*[月.\-/]\s*(\d{1,2})\s*日?")
# 本报记者 李润钊 / 本报讯(记者张琳 通讯员林龙婷) / (通讯员张璐 记者李玉波): the reporter, not a photographer
_REPORTER = re.compile(rf"记者[\s\u3000]*([{HAN_CHARS}]{{2,3}})(?=[\s\u3000、，,）)]|通讯员|本报)")


@dataclass(frozen=True)
class Entry:
    """One article of a seed file, or a file that holds none (then `problem` says why)."""

    source: str  # path inside the seeds folder
    article: int
    title: str
    pages: int  # pages a PDF article spans (0 for other formats)
    chunks: int
    date: str = ""  # YYYY-MM-DD the article states, else its file's metadata (web page, PDF, Word)
    reporter: str = ""
    problem: str = ""
    ids: tuple[int, ...] = field(default=(), compare=False, repr=False)  # its chunks

    @cached_property  # listed and filtered many times per index generation
    def folder(self) -> str:
        parent = str(PurePosixPath(self.source).parent)
        return "" if parent == "." else parent

    @cached_property
    def text(self) -> str:
        """What a text filter looks in."""
        return f"{self.source} {self.title} {self.reporter} {self.date}"

    @property
    def format(self) -> str:
        return PurePosixPath(self.source).suffix.lower().lstrip(".")


def dateline(text: str) -> str:
    """The first date the text states, as YYYY-MM-DD ("" when none is a real date)."""
    for m in _DATE.finditer(text):
        year, month, day = (int(g) for g in m.groups())
        if 1 <= month <= 12 and 1 <= day <= 31:
            return f"{year:04d}-{month:02d}-{day:02d}"
    return ""


def reporter(text: str) -> str:
    m = _REPORTER.search(text[:300])  # the byline, not a reporter the story mentions
    return m.group(1) if m else ""


def catalogue(store) -> list[Entry]:
    """Every article the index holds, in file order, and every file it holds nothing of."""
    groups: dict[tuple[str, int], list] = {}
    for chunk in store.iter_chunks():
        groups.setdefault((chunk.source, chunk.article), []).append(chunk)
    entries = []
    dates = store.manifest.dates
    for (source, article), chunks in groups.items():
        chunks.sort(key=lambda c: c.start)
        head = chunks[0].text
        pages = {c.page for c in chunks if c.page}
        # the article's own dateline, else the date its file's metadata gives
        entries.append(Entry(source, article, chunks[0].title, len(pages), len(chunks), dateline(head) or dates.get(source, ""),
                             reporter(head), ids=tuple(c.id for c in chunks)))
    entries += [Entry(source, 0, "", 0, 0, problem=why) for source, why in store.manifest.problems.items()]
    return sorted(entries, key=lambda e: (e.source, e.article))


_catalogues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_catalogues_lock = threading.Lock()


def catalogue_of(store) -> list[Entry]:
    """The store's catalogue, built at its first use and kept while the store is (an index update
    makes a new store, so a new catalogue)."""
    with _catalogues_lock:
        if store not in _catalogues:
            _catalogues[store] = catalogue(store)
        return _catalogues[store]


def in_scope(store, scope: Scope) -> set[int]:
    """The chunk ids of the articles in the scope's folder and date range; an article that states
    no date is outside any date range."""
    ids: set[int] = set()
    for e in matching(catalogue_of(store), scope.folder):
        if (scope.since or scope.until) and not (e.date and (scope.since or e.date) <= e.date <= (scope.until or e.date)):
            continue
        ids.update(e.ids)
    return ids


def matching(entries: list[Entry], folder: str = "", text: str = "") -> list[Entry]:
    """Entries in `folder` (and its subfolders) whose path, title, reporter or date holds `text`
    (either script)."""
    folder = folder.strip().strip("/")
    text = text.strip()
    # The query in both scripts, not 20,000 titles converted per listing (1.2 s; bench/desk.py).
    wanted = {text, to_search_form(text), in_script(text, "zh-Hant")} - {""} if text else set()
    out = []
    for e in entries:
        if folder and not (e.folder == folder or e.folder.startswith(folder + "/")):
            continue
        if wanted and not any(w in e.text for w in wanted):
            continue
        out.append(e)
    return out


def to_trash(seeds: Path, source: str) -> Path:
    """Move a seed file into the trash, keeping its path; returns where it went."""
    path = _inside(seeds, source)
    if not path.is_file():
        raise FileNotFoundError(f"{source} is not in the seeds folder (deleted already?)")
    target = seeds / TRASH / time.strftime("%Y%m%d-%H%M%S") / source
    while target.exists():  # deleted twice within a second
        target = target.with_name("_" + target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, target)
    return target


def trashed(seeds: Path) -> list[tuple[str, str]]:
    """(trash path, original source) of every file in the trash, the latest first."""
    root = seeds / TRASH
    if not root.is_dir():
        return []
    out = []
    for path in root.rglob("*"):
        if path.is_file():
            relative = path.relative_to(root)
            out.append((relative.as_posix(), PurePosixPath(*relative.parts[1:]).as_posix()))
    return sorted(out, reverse=True)


def restore(seeds: Path, trash_path: str) -> str:
    """Move a trashed file back to its place; refused, by name, when a file is there now."""
    path = _inside(seeds / TRASH, trash_path)
    if not path.is_file():
        raise FileNotFoundError(f"{trash_path} is not in the trash")
    source = PurePosixPath(*PurePosixPath(trash_path).parts[1:]).as_posix()
    target = _inside(seeds, source)
    if target.exists():
        raise FileExistsError(f"{source} exists again in the seeds folder; move it away first, nothing was overwritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, target)
    return source


def _inside(root: Path, relative: str) -> Path:
    """`root / relative`, refusing a path that leads out of `root` (`../`, an absolute path)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()) or path == root.resolve():
        raise ValueError(f"{relative!r} is not a path inside {root}")
    return path
