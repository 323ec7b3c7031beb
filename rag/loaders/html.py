"""Saved web pages: the article's title, date and main text, without navigation, ads,
sidebars and footers (trafilatura, which also detects the page's encoding)."""
from __future__ import annotations

from pathlib import Path

from ..clean import UnreadableFileError
from ..types import Document


def load(path: Path) -> Document:
    import trafilatura

    page = trafilatura.bare_extraction(path.read_bytes(), with_metadata=True, include_comments=False, include_tables=True)
    if page is None or not (page.text or "").strip():
        raise UnreadableFileError(f"{path.name}: no article text found in this web page (only navigation or an empty body); save the article page itself")
    head = [line for line in (page.title, page.date) if line and not page.text.lstrip().startswith(line)]
    return Document("\n".join([*head, page.text.strip()]))
