"""The newsroom desk: what users keep beside the archive.

- `journal`: conversations, their answers and the feedback on them, in one SQLite file;
- `cases`: feedback turned into a question set that `rag eval` runs.
"""
from .journal import Conversation, Journal, JournalError, Turn, open_journal

__all__ = ["Conversation", "Journal", "JournalError", "Turn", "open_journal"]
