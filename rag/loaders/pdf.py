"""PDF pages: the text layer in reading order, paragraphs re-joined, each page's start kept.

PDFium (pypdfium2, the engine of Chrome's viewer) reads the characters, including the
predefined Chinese CID encodings that pdfminer.six decodes with gaps, and gives text
lines with their positions. It does not order a newspaper page, so lines are ordered by
a recursive XY cut: split into columns where a vertical strip is empty from top to
bottom; where something spans the columns (a headline), cut into horizontal bands and
read them top to bottom. Lines then join into paragraphs where the next line follows at
the usual line spacing and the line before it ran to the column's edge; the cleaner
re-joins paragraphs that run on to the next column or page.
"""
from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import NamedTuple

from . import too_large
from ..text.script import HAN
from .decode import UnreadableFileError
from ..types import Document

_PAGE_NUMBER = re.compile(r"[-–—·\s]*(第\s*)?\d{1,4}(\s*[页頁版])?[-–—·\s]*")
_PDF_DATE = re.compile(r"(?:D:)?((?:19|20)\d\d)(\d\d)(\d\d)")
_COLUMN_GAP = 1.0  # points of empty vertical strip that separate two columns (gutters are wider; punctuation may hang into them)


class Box(NamedTuple):
    """A line of text and its place on the page (PDF points, origin bottom left)."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    chars: tuple = ()  # (character, its box) of the line: where a quoted span is drawn on the page


def load(path: Path, max_mb: float) -> Document:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise UnreadableFileError(f"{path.name}: the PDF is encrypted with a password; save an unprotected copy and add that") from exc
        raise UnreadableFileError(f"{path.name}: not a readable PDF ({exc}); it may be damaged or incomplete") from exc
    parts: list[str] = []
    pages: list[int] = []
    offset, pictures = 0, 0
    try:
        date = pdf_date(pdf.get_metadata_dict().get("CreationDate", ""))
        for page in pdf:
            lines = [b for b in _lines(page) if not _PAGE_NUMBER.fullmatch(b.text)]
            pictures += sum(1 for _ in page.get_objects(filter=(pdfium.raw.FPDF_PAGEOBJ_IMAGE,), max_depth=1))
            text = "".join(p + "\n" for p in paragraphs(reading_order(lines)))
            pages.append(offset)
            parts.append(text)
            offset += len(text)
            if offset > max_mb * 2**20:  # compressed streams: a small file can hold pages of text without end
                raise UnreadableFileError(too_large(path.name, f"more than {offset:,} characters of text by page {len(pages)}", max_mb))
    finally:
        pdf.close()
    text = "".join(parts)
    if not text.strip():
        what = "its pages are images (a scan?)" if pictures else "its pages hold no text"
        raise UnreadableFileError(f"{path.name}: no text layer, {what}; OCR is not supported, so run it through an OCR tool (e.g. ocrmypdf) first")
    return Document(text, tuple(pages), date)


def pdf_date(value: str) -> str:
    """A PDF date (D:20210315080000+08'00') as YYYY-MM-DD, or "" when it is none."""
    m = _PDF_DATE.match(value.strip())
    if not m:
        return ""
    year, month, day = m.groups()
    return f"{year}-{month}-{day}" if 1 <= int(month) <= 12 and 1 <= int(day) <= 31 else ""


def characters(page) -> list[tuple[str, tuple[float, float, float, float]]]:
    """A page's characters (whitespace left out) with their boxes, in the order the loader reads
    them: where a span of the extracted text stands on the page."""
    return [(c, box) for line in reading_order(_lines(page)) for c, box in line.chars if not c.isspace()]


def _lines(page) -> list[Box]:
    """Characters in the order PDFium reads them, cut into lines where the next character is not
    on the same baseline just to the right (PDFium's own line rectangles lose lines of fonts
    that declare no height, such as the built-in Chinese CID fonts)."""
    import pypdfium2.raw as raw

    textpage = page.get_textpage()
    try:
        boxes: list[Box] = []
        chars: list[tuple[str, tuple[float, float, float, float]]] = []

        def close() -> None:
            text = "".join(c for c, _ in chars).strip()
            if text:
                boxes.append(Box(min(b[0] for _, b in chars), min(b[1] for _, b in chars),
                                 max(b[2] for _, b in chars), max(b[3] for _, b in chars), text, tuple(chars)))
            chars.clear()

        for i in range(textpage.count_chars()):
            char = chr(raw.FPDFText_GetUnicode(textpage, i))
            if char in "\r\n":
                close()
                continue
            if raw.FPDFText_HasUnicodeMapError(textpage, i) == 1:
                continue
            if char == " " and raw.FPDFText_IsGenerated(textpage, i) == 1 and chars and not chars[-1][0].isascii():
                continue  # PDFium guesses a space from a wide gap; between Chinese characters there is none
            box = textpage.get_charbox(i, loose=True)
            if chars and not _continues(chars[-1][1], box):
                close()
            chars.append((char, box))
        close()
        return boxes
    finally:
        textpage.close()


def _continues(prev: tuple[float, float, float, float], box: tuple[float, float, float, float]) -> bool:
    """The next character is on the same line: vertically overlapping, and at most a word space to the right."""
    height = max(prev[3] - prev[1], 1.0)
    same_line = box[1] < prev[3] - height / 3 and box[3] > prev[1] + height / 3
    return same_line and prev[2] - height / 2 <= box[0] <= prev[2] + height * 0.8  # a gutter is wider than a word space


def reading_order(boxes: list[Box]) -> list[Box]:
    """Columns left to right, each top to bottom; bands under and over full-width items in turn."""
    if len(boxes) <= 1:
        return boxes
    columns = _groups(boxes, _x, _COLUMN_GAP)
    if len(columns) > 1:
        return [b for column in columns for b in reading_order(column)]
    bands = _groups(boxes, _down, 0.0)
    if len(bands) == 1:
        return sorted(boxes, key=lambda b: (-b.y1, b.x0))
    merged = [bands[0]]
    for band in bands[1:]:  # consecutive bands with columns in common are one stretch of columns
        if len(_groups(merged[-1] + band, _x, _COLUMN_GAP)) > 1:
            merged[-1] = merged[-1] + band
        else:
            merged.append(band)
    return [b for band in merged for b in reading_order(band)]


def paragraphs(lines: list[Box]) -> list[str]:
    """Lines in reading order joined into paragraphs: a line continues the one before when it
    sits one line-spacing below it, starts where it started, and the line before ran full width."""
    if not lines:
        return []
    char = statistics.median((b.x1 - b.x0) / max(len(b.text), 1) for b in lines)
    drops = [a.y0 - b.y0 for a, b in zip(lines, lines[1:]) if a.y0 - b.y0 > char / 2]
    # Line spacing: the lower quartile of the drops, as blank lines and column tops are the larger ones.
    leading = sorted(drops)[len(drops) // 4] if drops else char * 1.5
    ends: dict[int, list[float]] = {}  # where a column's lines end, by where they start
    for b in lines:
        ends.setdefault(round(b.x0 / char), []).append(b.x1)
    right = {key: statistics.median(xs) for key, xs in ends.items()}  # most lines run full width
    out: list[list[Box]] = []
    for b in lines:
        prev = out[-1][-1] if out else None
        follows = (
            prev is not None
            and 0 < prev.y0 - b.y0 <= leading * 1.3
            and abs(b.x0 - prev.x0) < char
            and prev.x1 >= right[round(prev.x0 / char)] - char * 1.5
        )
        if follows:
            out[-1].append(b)
        else:
            out.append([b])
    return [_join(p) for p in out]


def _join(lines: list[Box]) -> str:
    """Lines join without a space, as Chinese text runs on; in a mostly non-Chinese paragraph
    a line end is a space."""
    latin = len(HAN.findall("".join(b.text for b in lines))) * 2 < sum(len(b.text) for b in lines)
    text = lines[0].text
    for b in lines[1:]:
        space = latin and not text.endswith("-")  # a hyphenated word runs on
        text += (" " if space else "") + b.text
    return text


def _x(b: Box) -> tuple[float, float]:
    return b.x0, b.x1


def _down(b: Box) -> tuple[float, float]:
    return -b.y1, -b.y0


def _groups(boxes: list[Box], span, gap: float) -> list[list[Box]]:
    """Boxes grouped where their projections onto one axis leave an empty stretch wider than `gap`."""
    ordered = sorted(boxes, key=lambda b: span(b)[0])
    groups: list[list[Box]] = []
    end = 0.0
    for box in ordered:
        lo, hi = span(box)
        if not groups or lo > end + gap:
            groups.append([box])
            end = hi
        else:
            groups[-1].append(box)
            end = max(end, hi)
    return groups
