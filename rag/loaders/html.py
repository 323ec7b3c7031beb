"""Saved web pages: the article's title, date and main text, without navigation, ads,
sidebars and footers (trafilatura, which also detects the page's encoding)."""
from __future__ import annotations

import re
from pathlib import Path

from ..clean import UnreadableFileError
from ..types import Document

_SENTENCE_END = re.compile(r"[。！？!?]|[.](\s|$)")


def load(path: Path) -> Document:
    import trafilatura

    page = trafilatura.bare_extraction(path.read_bytes(), with_metadata=True, include_comments=False, include_tables=True)
    # trafilatura falls back to any text it finds; a run of links with no sentence in it is no article
    if page is None or not _SENTENCE_END.search(page.text or ""):
        raise UnreadableFileError(f"{path.name}: no article text found in this web page (only navigation or an empty body); save the article page itself")
    head = [line for line in (page.title, page.date) if line and not page.text.lstrip().startswith(line)]
    return Document("\n".join([*head, page.text.strip()]))
