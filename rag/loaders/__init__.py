"""Every supported file format becomes one plain `Document`, then goes through the same
cleaning, segmentation and chunking as a .txt page. Offsets in citations refer to the
document's text, which is also what the whole-article view shows.

Each format is a small module with one `load(path) -> Document` (`load(path, max_mb)` for
formats that unpack); heavy libraries are
imported only when a file of that format is read.
"""
from __future__ import annotations

import bisect
import importlib
from pathlib import Path

from ..config import Config
from .decode import SkippedFileError, UnreadableFileError
from ..types import Document

# suffix -> module in this package
_MODULES = {
    ".txt": "text",
    ".md": "markdown", ".markdown": "markdown",
    ".html": "html", ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
SUPPORTED: tuple[str, ...] = tuple(_MODULES)
# Formats whose text can expand far beyond their size on disk: their loaders stop at a limit.
_EXPANDING = {"docx", "pdf"}

__all__ = ["SUPPORTED", "Document", "SkippedFileError", "UnreadableFileError", "is_supported", "load", "page_at", "too_large", "unsupported_message"]


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in _MODULES


def unsupported_message(name: str) -> str:
    return f"{name}: not a format zhiwen reads ({' '.join(SUPPORTED)}); convert it to one of these"


def load(path: Path, max_mb: float = Config.max_file_mb) -> Document:
    """The text of one seed file, whatever its format; a clear error names the file otherwise.

    `max_mb` (Config.max_file_mb) bounds what the file becomes, not only its size on disk: a
    3 MB Word file can unpack to a gigabyte, and a PDF's streams are compressed too."""
    suffix = path.suffix.lower()
    if suffix not in _MODULES:
        raise UnreadableFileError(unsupported_message(path.name))
    module = importlib.import_module(f".{_MODULES[suffix]}", __name__)
    document = module.load(path, max_mb) if _MODULES[suffix] in _EXPANDING else module.load(path)
    if len(document.text) > max_mb * 2**20:
        raise UnreadableFileError(too_large(path.name, f"{len(document.text):,} characters of text", max_mb))
    if not document.text.strip():
        raise SkippedFileError(f"{path.name}: no text in it, skipped")
    return document


def too_large(name: str, what: str, max_mb: float) -> str:
    """One line for a file over the limit, with the setting that raises it."""
    return f"{name}: {what}, above the {max_mb:g} MB limit for one file; split it, or raise max_file_mb (RAG_MAX_FILE_MB)"


def page_at(document: Document, offset: int) -> int:
    """1-based page of a text offset, or 0 for formats without pages."""
    return bisect.bisect_right(document.pages, offset) if document.pages else 0
