"""Plain-text pages: decoding (BOMs, UTF-8, GB18030/Big5) lives in `clean.decode`."""
from __future__ import annotations

from pathlib import Path

from ..clean import decode
from ..types import Document


def load(path: Path) -> Document:
    return Document(decode(path))
