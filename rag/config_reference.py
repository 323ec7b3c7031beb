"""The settings reference, written from rag/config.py itself: its sections, fields, defaults and
comments. `rag config` shows the settings in effect; `rag config --markdown` writes
docs/configuration.md, which a test compares with this output so the page cannot go stale."""
from __future__ import annotations

import ast
import io
import os
import tokenize
from dataclasses import fields
from pathlib import Path

from . import config as _config
from .config import ROOT, SECTIONS, Config

_INTRO = """# Configuration

Every setting is a keyword of `Assistant(...)` (`Assistant(k=8)`) and an environment variable
`RAG_<NAME>` (`RAG_K=8`); a keyword wins over the variable. The settings of the *Model* and
*Reading* sections, and `k`, may also be given to one question only
(`assistant.ask(question, llm_model="qwen2.5-coder-0.5b")`), as the chat page does for each user.
`rag config` prints the settings in effect.

This page is written by `rag config --markdown > docs/configuration.md` from `rag/config.py`;
a test fails when it is stale.
"""


def descriptions() -> dict[str, str]:
    """Each field's meaning: the comment lines right above it and the comment at its end."""
    source = Path(_config.__file__).read_text(encoding="utf-8")
    comments = {t.start[0]: t.string.lstrip("#").strip()
                for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT}
    lines = source.splitlines()
    section_names = {section.__name__ for section in SECTIONS}
    found: dict[str, str] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.ClassDef) and node.name in section_names):
            continue
        for item in node.body:
            if not isinstance(item, ast.AnnAssign):
                continue
            above, line = [], item.lineno - 1
            while line >= 1 and lines[line - 1].lstrip().startswith("#"):
                above.insert(0, comments[line])
                line -= 1
            words = above + ([comments[item.lineno]] if item.lineno in comments else [])
            found[item.target.id] = " ".join(words)
    return found


def shown(value: object) -> str:
    """A default as a user writes it: folders in the checkout relative to it."""
    if isinstance(value, Path):
        try:
            return f"`{value.relative_to(ROOT).as_posix()}/`"
        except ValueError:
            return f"`{value}`"
    if value is None or value == "":
        return "(none)" if value is None else '`""`'
    return f"`{value}`"


def markdown() -> str:
    meaning, defaults = descriptions(), Config()
    out = [_INTRO]
    for section in SECTIONS:
        out += [f"## {section.__name__}", "", section.__doc__.strip(), "",
                "| setting | variable | default | meaning |", "|---|---|---|---|"]
        for f in fields(section):
            text = meaning.get(f.name, "").replace("|", "\\|")
            out.append(f"| `{f.name}` | `RAG_{f.name.upper()}` | {shown(getattr(defaults, f.name))} | {text} |")
        out.append("")
    return "\n".join(out)


def in_effect(config: Config) -> str:
    """The settings as this process sees them, by section; those set by a variable are marked."""
    out = []
    for section in SECTIONS:
        out.append(f"[{section.__name__}]")
        for f in fields(section):
            variable = f"RAG_{f.name.upper()}"
            mark = f"  ({variable})" if variable in os.environ else ""
            out.append(f"{f.name} = {getattr(config, f.name)}{mark}")
        out.append("")
    return "\n".join(out)
