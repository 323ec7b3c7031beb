"""Indexing in the background: a change to the seeds folder is indexed by a worker thread while
questions are answered from the last whole index, which the new one replaces when it is whole.

Embedding a dropped file takes seconds to hours; with the update inline, every route of the
server waited for it (`/healthz` timed out for 56 s on one 40k-character file).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .index import BuildReport

log = logging.getLogger(__name__)


@dataclass
class IndexingStatus:
    """What `/healthz` and the app say about indexing."""

    running: bool = False
    stage: str = ""  # "reading" files, then "embedding" chunks
    done: int = 0
    total: int = 0
    seconds: float = 0.0  # since this update started
    last: dict = field(default_factory=dict)  # the last finished update: counts, problems, when
    error: str = ""  # why the last update failed, if it did

    def line(self) -> str:
        """One line for people, "" when idle with nothing to say."""
        if self.running:
            unit = "files read" if self.stage == "reading" else "chunks embedded"
            return f"Indexing new or changed articles: {self.done} of {self.total} {unit} ({self.seconds:.0f} s); answers use the last whole index meanwhile."
        if self.error:
            return f"The last index update failed: {self.error}"
        return ""


class Indexer:
    """Runs `update(watch)` in one worker thread at a time; a request while it runs makes it run
    once more when done, so a file dropped mid-update is not missed."""

    def __init__(self, update: Callable[[Callable[[object], None]], BuildReport]):
        self._update = update
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False
        self._bar = None
        self._started = 0.0
        self._last: dict = {}
        self._error = ""
        self._report: BuildReport | None = None

    def request(self) -> None:
        """Start an update now, or after the one running."""
        with self._lock:
            if self._thread is not None:
                self._again = True
                return
            self._thread = threading.Thread(target=self._run, name="rag-indexer", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> BuildReport | None:
        """Wait for the running update (and any requested after it); its report, or None if none ran."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._report

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None

    def status(self) -> IndexingStatus:
        bar, running = self._bar, self.running
        if not running or bar is None:
            return IndexingStatus(running=running, last=self._last, error=self._error)
        stage = "reading" if "reading" in str(bar.desc) else "embedding"
        return IndexingStatus(True, stage, int(bar.n), int(bar.total or 0), time.time() - self._started, self._last, self._error)

    def _watch(self, bar) -> None:
        self._bar = bar

    def _run(self) -> None:
        while True:
            self._started, self._bar = time.time(), None
            try:
                report = self._update(self._watch)
                self._report, self._error = report, ""
                if report.touched or not self._last:  # a run that found nothing new keeps what the last one did
                    self._last = {"added": report.added, "changed": report.changed, "removed": report.removed,
                                  "problems": report.problems, "chunks": report.chunks, "seconds": round(report.seconds, 1),
                                  "finished": time.time()}
            except Exception as exc:  # the worker must outlive a failed update; the next change tries again
                log.exception("index update failed")
                self._error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False
