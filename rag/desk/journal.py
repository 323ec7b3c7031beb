"""Conversations, answers and feedback kept in one SQLite file (`Config.desk_path`).

SQLite because it is in the standard library, one file a user can copy, and every write is a
transaction: a crash keeps what was stored before it. One `Journal` per process is safe to
share between threads (one connection behind a lock; WAL lets other processes read meanwhile).
Anything wrong with the file (locked by another program, not a database, read-only) is one
`JournalError` line; callers keep answering without history.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..types import Answer

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations(owner, updated);
CREATE TABLE IF NOT EXISTS turns (
    id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL, refused INTEGER NOT NULL,
    citations TEXT NOT NULL, model TEXT NOT NULL, generation TEXT NOT NULL,
    ttft REAL NOT NULL, seconds REAL NOT NULL, created REAL NOT NULL,
    rating INTEGER, note TEXT NOT NULL DEFAULT '', rated REAL);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation, position);
CREATE INDEX IF NOT EXISTS turns_by_rating ON turns(rated);
"""
_VERSION = 1
_TITLE_CHARS = 40


class JournalError(RuntimeError):
    """The conversation file cannot be used; the message says which file and what to do."""


@dataclass(frozen=True)
class Conversation:
    id: str
    owner: str
    title: str
    created: float
    updated: float
    turns: int


@dataclass(frozen=True)
class Turn:
    """One question and the answer given, with what it rested on and what the user said of it."""

    id: str
    conversation: str
    question: str
    answer: str
    refused: bool
    citations: list[dict]  # source, title, page, quote, start, end
    model: str
    generation: str  # the index the answer came from (its build time)
    ttft: float
    seconds: float
    created: float
    rating: int | None = None  # +1 right, -1 wrong, None unrated
    note: str = ""


class Journal:
    def __init__(self, path: Path, timeout: float = 2.0):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > _VERSION:
                raise JournalError(f"{self.path} was written by a newer zhiwen (format {version}); upgrade, or set RAG_DESK_PATH to another file")
            self._db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {_VERSION}; COMMIT;")
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(_explain(self.path, exc)) from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock: all of it is stored, or none of it."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise JournalError(_explain(self.path, exc)) from None

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(_explain(self.path, exc)) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Conversations -------------------------------------------------------------------------

    def start(self, owner: str, title: str = "", id: str | None = None) -> str:
        """A new conversation of `owner` (a login name, "local", or "api")."""
        now = time.time()
        conversation = id or uuid.uuid4().hex
        with self._transaction() as db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)", (conversation, owner, title.strip()[:200], now, now))
        return conversation

    def conversations(self, owner: str, limit: int = 200) -> list[Conversation]:
        """The owner's conversations, the latest first."""
        rows = self._read(
            "SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation = c.id) AS n FROM conversations c "
            "WHERE owner = ? ORDER BY updated DESC LIMIT ?", (owner, limit))
        return [Conversation(r["id"], r["owner"], r["title"], r["created"], r["updated"], r["n"]) for r in rows]

    def conversation(self, id: str) -> Conversation | None:
        rows = self._read("SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation = c.id) AS n "
                          "FROM conversations c WHERE id = ?", (id,))
        return Conversation(*(rows[0][k] for k in ("id", "owner", "title", "created", "updated", "n"))) if rows else None

    def rename(self, id: str, title: str, owner: str) -> bool:
        with self._transaction() as db:
            return db.execute("UPDATE conversations SET title = ? WHERE id = ? AND owner = ?",
                              (title.strip()[:200], id, owner)).rowcount == 1

    def delete(self, id: str, owner: str) -> bool:
        """The conversation and its turns (feedback included): gone in one transaction."""
        with self._transaction() as db:
            return db.execute("DELETE FROM conversations WHERE id = ? AND owner = ?", (id, owner)).rowcount == 1

    # Turns ---------------------------------------------------------------------------------

    def record(self, conversation: str, question: str, answer: Answer, model: str, generation: str,
               id: str | None = None) -> str:
        """Store a question and its answer at the end of the conversation; returns the turn's id."""
        turn = id or uuid.uuid4().hex
        now = time.time()
        citations = [{"source": p.source, "title": p.title, "page": p.page, "quote": p.quote,
                      "start": p.quote_start if p.quote_start >= 0 else p.start,
                      "end": p.quote_end if p.quote_end >= 0 else p.end} for p in answer.citations]
        with self._transaction() as db:
            found = db.execute("SELECT title, (SELECT COALESCE(MAX(position), -1) FROM turns WHERE conversation = ?) "
                               "FROM conversations WHERE id = ?", (conversation, conversation)).fetchone()
            if found is None:
                raise JournalError(f"conversation {conversation} is not in {self.path} (deleted meanwhile?)")
            title, last = found
            db.execute("INSERT INTO turns (id, conversation, position, question, answer, refused, citations, model, "
                       "generation, ttft, seconds, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (turn, conversation, last + 1, question, answer.text, int(answer.refused),
                        json.dumps(citations, ensure_ascii=False), model, generation,
                        answer.trace.ttft, answer.trace.seconds, now))
            db.execute("UPDATE conversations SET updated = ?, title = ? WHERE id = ?",
                       (now, title or _title(question), conversation))
        return turn

    def turns(self, conversation: str) -> list[Turn]:
        return [_turn(r) for r in self._read("SELECT * FROM turns WHERE conversation = ? ORDER BY position", (conversation,))]

    def turn(self, id: str) -> Turn | None:
        rows = self._read("SELECT * FROM turns WHERE id = ?", (id,))
        return _turn(rows[0]) if rows else None

    # Feedback ------------------------------------------------------------------------------

    def rate(self, turn: str, right: bool | None, note: str | None = None) -> bool:
        """Mark an answer right (👍), wrong (👎) or unrated (None); a note, when given, replaces the
        last one. False when no such turn is stored."""
        rating = None if right is None else (1 if right else -1)
        note = None if note is None else note.strip()[:2000]
        with self._transaction() as db:
            return db.execute("UPDATE turns SET rating = ?, note = COALESCE(?, note), rated = ? WHERE id = ?",
                              (rating, note, time.time(), turn)).rowcount == 1

    def annotate(self, turn: str, note: str) -> bool:
        """Attach a note to an answer, keeping its rating."""
        with self._transaction() as db:
            return db.execute("UPDATE turns SET note = ?, rated = ? WHERE id = ?", (note.strip()[:2000], time.time(), turn)).rowcount == 1

    def rated(self) -> list[Turn]:
        """Every answer a user marked, oldest first."""
        return [_turn(r) for r in self._read("SELECT * FROM turns WHERE rating IS NOT NULL ORDER BY rated")]

    def feedback_by_day(self) -> list[tuple[str, int, int, int]]:
        """(day, answers, marked right, marked wrong) per day with any answer, the latest first (UTC days)."""
        rows = self._read(
            "SELECT date(created, 'unixepoch') AS day, COUNT(*), SUM(rating = 1), SUM(rating = -1) "
            "FROM turns GROUP BY day ORDER BY day DESC")
        return [(r[0], r[1], r[2] or 0, r[3] or 0) for r in rows]


def answer_model(config) -> str:
    """The model that writes the answers, as a user knows it: a URL, a GGUF file name, or the backend."""
    if config.llm_backend == "openai":
        return config.llm_url
    return Path(str(config.llm_model)).name if config.llm_backend == "llama" else config.llm_backend


def generation(manifest) -> str:
    """Which index an answer came from: the time its build finished (UTC, to the second)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(manifest.built_at))


def _turn(r: sqlite3.Row) -> Turn:
    return Turn(r["id"], r["conversation"], r["question"], r["answer"], bool(r["refused"]), json.loads(r["citations"]),
                r["model"], r["generation"], r["ttft"], r["seconds"], r["created"], r["rating"], r["note"])


def _title(question: str) -> str:
    question = " ".join(question.split())
    return question if len(question) <= _TITLE_CHARS else question[: _TITLE_CHARS - 1] + "…"


def _explain(path: Path, exc: Exception) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"{path} is locked by another program (sqlite: {text}); close it, or set RAG_DESK_PATH to another file"
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return f"{path} is not a readable conversation file (sqlite: {text}); move it aside to start a new one"
    if "readonly" in text or isinstance(exc, PermissionError):
        return f"{path} cannot be written ({text}); make it writable, or set RAG_DESK_PATH to another file"
    return f"{path}: {text}"


def open_journal(path: Path) -> tuple[Journal | None, str]:
    """The journal, or None and the one line that says why history is off."""
    try:
        return Journal(path), ""
    except JournalError as exc:
        log.warning("history off: %s", exc)
        return None, str(exc)
