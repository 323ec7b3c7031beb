"""Plain-text pages: decoding (BOMs, UTF-8, GB18030/Big5) lives in `loaders/decode.py`."""
from __future__ import annotations

from pathlib import Path

from .decode import decode
from ..types import Document


def load(path: Path) -> Document:
    return Document(decode(path))
