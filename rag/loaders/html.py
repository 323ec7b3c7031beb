"""Saved web pages: the article's title, date and main text, without navigation, ads,
sidebars and footers (trafilatura, which also detects the page's encoding)."""
from __future__ import annotations

import re
from pathlib import Path

from .decode import UnreadableFileError
from ..types import Document

_SENTENCE_END = re.compile(r"[。！？!?]|[.](\s|$)")


def load(path: Path) -> Document:
    import trafilatura

    raw = path.read_bytes()
    page = trafilatura.bare_extraction(raw, with_metadata=True, include_comments=False, include_tables=True)
    # trafilatura falls back to any text it finds; a run of links with no sentence in it is no article
    if page is None or not _SENTENCE_END.search(page.text or ""):
        raise UnreadableFileError(f"{path.name}: no article text found in this web page (only navigation or an empty body); save the article page itself")
    date = page.date if page.date and _stated(page.date, raw.decode("utf-8", "replace")) else ""
    head = [line for line in (page.title, date) if line and not page.text.lstrip().startswith(line)]
    return Document("\n".join([*head, page.text.strip()]), date=date)


def _stated(date: str, page: str) -> bool:
    """Whether the page itself gives the date trafilatura returns: with no date in a page it may
    guess one (a made-up 1995-01-01 was added to a page's text)."""
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", date)
    if not match:
        return False
    y, m, d = match.groups()
    forms = {date, f"{y}/{m}/{d}", f"{y}.{m}.{d}", f"{y}{m}{d}", f"{y}年{int(m)}月{int(d)}日", f"{y}年{m}月{d}日"}
    return any(form in page for form in forms)
