"""Settings: in sections, each settable by keyword and by RAG_<NAME>, each explained in a page that cannot go stale."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from rag.cli import main
from rag.config import PER_QUESTION, SECTIONS, Config, Model, Reading, load_config
from rag.config_reference import descriptions, markdown

ROOT = Path(__file__).resolve().parent.parent


def test_the_settings_reference_is_current():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == markdown(), "docs/configuration.md is stale: run `rag config --markdown > docs/configuration.md`"


def test_every_setting_is_in_one_section_and_explained():
    by_section = [f.name for section in SECTIONS for f in fields(section)]
    assert sorted(by_section) == sorted(f.name for f in fields(Config)) and len(set(by_section)) == len(by_section)
    meaning = descriptions()
    assert [name for name in by_section if len(meaning.get(name, "")) < 10] == []
    assert {f.name for f in fields(Model)} <= PER_QUESTION and {f.name for f in fields(Reading)} <= PER_QUESTION
    assert "store" not in PER_QUESTION and "seeds_dir" not in PER_QUESTION


def _another(value: object, tmp_path: Path) -> tuple[str, object]:
    """A value unlike the default, as a variable spells it and as the field holds it."""
    if isinstance(value, bool):
        return str(not value).lower(), not value
    if isinstance(value, int):
        return str(value + 3), value + 3
    if isinstance(value, float):
        return str(value + 0.5), value + 0.5
    if isinstance(value, Path) or value is None:
        return str(tmp_path / "x"), tmp_path / "x"
    return value + "-other", value + "-other"


@pytest.mark.parametrize("name", [f.name for f in fields(Config)])
def test_each_variable_sets_its_setting_and_a_keyword_wins(name, monkeypatch, tmp_path):
    spelled, value = _another(getattr(Config(), name), tmp_path)
    monkeypatch.setenv(f"RAG_{name.upper()}", spelled)
    assert getattr(load_config(), name) == value
    default = getattr(Config(), name)
    if default is not None:  # a keyword given as None means "not given"
        assert getattr(load_config(**{name: default}), name) == default


def test_rag_config_shows_a_variables_value_and_where_it_came_from(monkeypatch, capsys):
    monkeypatch.setenv("RAG_K", "9")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "k = 9  (RAG_K)" in out and "[Retrieval]" in out and "\nfusion = cc\n" in out
