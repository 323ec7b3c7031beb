"""The printed page behind a PDF citation, with the quoted span highlighted.

PDFium renders the page (pypdfium2, already the PDF loader's engine); the span's characters
are found among the page's characters in the loader's own reading order, so a quote that
runs across a column break is found as it reads, and each character's box is painted over
in the highlight colour (multiplied, so the print stays legible on it).
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HIGHLIGHT = (253, 230, 138)  # the app's <mark> colour
_SHORTEST = 4  # characters of a quote that must match before its start is trusted


@dataclass
class PageImage:
    image: object  # PIL.Image
    boxes: list[tuple[int, int, int, int]]  # the highlighted characters, pixels (left, top, right, bottom)


def render(path: Path, page: int, quote: str = "", scale: float = 1.5) -> PageImage:
    """Page `page` (1-based) of a PDF with `quote` highlighted where it stands; no boxes when the
    page does not hold it (a quote the cleaner repaired across a page break)."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageChops, ImageDraw

    from ..loaders.pdf import characters

    pdf = pdfium.PdfDocument(str(path))
    try:
        if not 1 <= page <= len(pdf):
            raise ValueError(f"{path.name} has {len(pdf)} pages, not a page {page}")
        sheet = pdf[page - 1]
        height = sheet.get_height()
        image = sheet.render(scale=scale).to_pil().convert("RGB")
        found = _span(characters(sheet), quote)
    finally:
        pdf.close()
    boxes = [(int(l * scale), int((height - t) * scale), int(r * scale + 0.999), int((height - b) * scale + 0.999))
             for l, b, r, t in found]
    if boxes:
        layer = Image.new("RGB", image.size, (255, 255, 255))
        draw = ImageDraw.Draw(layer)
        for box in boxes:
            draw.rectangle(box, fill=HIGHLIGHT)
        image = ImageChops.multiply(image, layer)
    return PageImage(image, boxes)


def _span(chars, quote: str) -> list[tuple[float, float, float, float]]:
    """The boxes of the quote's characters, whitespace ignored; a quote whose end the page does
    not hold (it runs on to the next page) is highlighted as far as it matches."""
    text = "".join(c for c, _ in chars)
    wanted = re.sub(r"\s+", "", quote)
    for length in range(len(wanted), _SHORTEST - 1, -1):
        at = text.find(wanted[:length])
        if at >= 0:
            return [box for _, box in chars[at: at + length]]
    return []


def cached_png(path: Path, page: int, quote: str, folder: Path) -> Path:
    """The rendered page as a PNG in `folder`, named by file, page and quote (rendered once)."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{page}|{quote}".encode()).hexdigest()[:24]
    target = folder / f"{key}.png"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial.png")
        render(path, page, quote).image.save(partial, optimize=False)
        partial.replace(target)
    return target
