"""zhiwen: offline question answering over Chinese news archives, with citations."""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Assistant", "Passage", "Answer", "Article", "Chunk", "Config"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .assistant import Assistant
    from .config import Config
    from .types import Answer, Article, Chunk, Passage


def __getattr__(name: str):
    # Lazy, so `import rag` (and the CLI) start fast; heavy libraries load on first use.
    if name == "Assistant":
        from .assistant import Assistant

        return Assistant
    if name == "Config":
        from .config import Config

        return Config
    if name in ("Passage", "Answer", "Article", "Chunk"):
        from . import types

        return getattr(types, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
