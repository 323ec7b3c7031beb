"""Markdown: the text without markup, one line per block, headings kept as their own lines
so the segmenter takes them as titles. Parsed with markdown-it-py (already installed by Gradio)."""
from __future__ import annotations

import logging
import re
from pathlib import Path

from ..text.script import HAN
from .decode import decode
from ..types import Document

log = logging.getLogger(__name__)

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_MARKERS = re.compile(r"^(\s*(?:[-*+>]|\d+[.)]|#{1,6})\s+)+")  # list items, quotes, headings, however deep


def load(path: Path) -> Document:
    from markdown_it import MarkdownIt

    source = decode(path).replace("\r\n", "\n")
    lines = []
    front = _FRONT_MATTER.match(source)
    if front:
        source = source[front.end():]
        lines += [m.group(1).strip() for m in re.finditer(r"^title:\s*(.+)$", front.group(1), re.M)]
    parsed = []
    for token in MarkdownIt("commonmark").enable("table").parse(source):
        if token.type == "inline":
            parsed.append(_inline_text(token.children or []))
        elif token.type in ("fence", "code_block"):
            parsed += token.content.splitlines()
    if len(HAN.findall("".join(parsed))) < 0.9 * len(HAN.findall(source)):
        # markdown-it stops at 20 levels of nesting (a list nested ten deep) and drops the rest of
        # the file without a word; read such a file line by line, its markers stripped, instead.
        log.warning("%s: nested too deep for a Markdown parser; read as plain text", path.name)
        parsed = [_MARKERS.sub("", line) for line in source.splitlines()]
    lines += parsed
    return Document("\n".join(line.strip() for line in lines if line.strip()))


def _inline_text(children) -> str:
    out = []
    for child in children:
        if child.type in ("text", "code_inline", "image"):  # an image's content is its alt text, often a photo caption
            out.append(child.content)
        elif child.type == "softbreak":
            out.append("\0")  # resolved below: nothing between Chinese characters, a space between words
        elif child.type == "hardbreak":
            out.append("\n")
    text = "".join(out)
    return re.sub(r"(?<=[\x00-\u2fff])\0(?=[\x00-\u2fff])", " ", text).replace("\0", "")
