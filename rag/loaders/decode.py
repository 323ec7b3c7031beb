"""Bytes to text: a BOM's encoding, UTF-8, or whichever of GB18030/Big5 reads as Chinese.

Text loaders (plain text, Markdown) read through `decode`; every loader reports a file it cannot
read with the two errors here.
"""
from __future__ import annotations

import codecs
import logging
from pathlib import Path

from ..text.script import HAN, in_script, jieba

log = logging.getLogger(__name__)


class UnreadableFileError(ValueError):
    """A seed file is neither UTF-8 nor a Chinese legacy encoding we can detect."""


class SkippedFileError(ValueError):
    """A seed file holds no text (empty or binary); it is skipped, not fatal."""


_ENCODINGS = ("gb18030", "big5")
# Byte-order marks, longest first: UTF-32-LE's mark begins with UTF-16-LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_PLAUSIBLE = 0.6  # share of common characters a legacy decoding needs
_MARGIN = 0.15  # ... and its lead over the other legacy encoding


def decode(path: Path) -> str:
    """Read a seed file as text: a BOM's encoding, UTF-8, or whichever of GB18030/Big5 reads as Chinese."""
    data = path.read_bytes()
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise UnreadableFileError(f"{path.name}: starts with a {encoding} byte-order mark but is not {encoding} ({exc.reason})") from exc
            if not text.strip():
                raise SkippedFileError(f"{path.name}: empty file, skipped")
            return text
    if not data.strip():
        raise SkippedFileError(f"{path.name}: empty file, skipped")
    if b"\x00" in data[:4096]:
        raise SkippedFileError(f"{path.name}: binary file (NUL bytes), skipped")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    encoding, text, doubt = _best_legacy_decoding(data)
    if doubt:
        raise UnreadableFileError(
            f"{path.name}: not UTF-8, and {doubt}; convert it with "
            f"`iconv -f <encoding> -t UTF-8 {path.name}` and index again"
        )
    log.warning("%s: not UTF-8, decoded as %s", path.name, encoding)
    return text


def _best_legacy_decoding(data: bytes) -> tuple[str, str, str]:
    """(encoding, text, doubt): GB18030 and Big5 both accept most byte pairs, so each
    reading is scored by how common its characters are once converted to simplified
    Chinese (a right Big5 reading is traditional text). A reading that is not clearly
    Chinese, or not clearly better than the other, is doubtful and not used."""
    candidates = []
    for encoding in _ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        candidates.append((_common_ratio(text), encoding, text))
    if not candidates:
        return "", "", "neither GB18030 nor Big5 decodes it"
    candidates.sort(reverse=True)
    ratio, encoding, text = candidates[0]
    if ratio < _PLAUSIBLE:
        return encoding, text, f"as {encoding} only {ratio:.0%} of its characters are common Chinese (garbled?)"
    if len(candidates) > 1 and ratio - candidates[1][0] < _MARGIN:
        return encoding, text, f"it reads about as well as {encoding} ({ratio:.0%}) as {candidates[1][1]} ({candidates[1][0]:.0%})"
    return encoding, text, ""


def _common_ratio(text: str) -> float:
    """Share of CJK characters (in simplified form) that jieba's dictionary knows as common single-character words."""
    han = HAN.findall(in_script(text, "zh-Hans"))
    if not han:
        return 1.0 if text.isprintable() or "\n" in text else 0.0
    freq = jieba().dt.FREQ
    return sum(1 for c in han if freq.get(c, 0) > 100) / len(han)
