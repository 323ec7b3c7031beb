"""Citation markers: the [1] an answer points to its passage with, in the forms models write them."""
from __future__ import annotations

import re

# [1], 【1】, [编号1], [1,2] (the numbers in group 1)
MARKER = re.compile(r"\s*[\[【［]\s*(?:编号|編號|来源|來源|source)?\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]】］]")
# A marker, also one cut short mid-stream ("[1"), which must not hide what follows it.
PARTIAL_MARKER = re.compile(r"[\[【［]\s*\d*\s*[\]】］]?")
_WRITTEN = re.compile(r"\[(\d+)\]")  # as the citation check writes them


def strip_markers(text: str) -> str:
    """The text without citation markers in any of the forms models write."""
    return MARKER.sub("", text)


def renumber(text: str, numbers: dict[int, int]) -> str:
    """The text with each [n] the citation check wrote as [numbers[n]] (n where it has none)."""
    return _WRITTEN.sub(lambda m: f"[{numbers.get(int(m.group(1)), m.group(1))}]", text)
