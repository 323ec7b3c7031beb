"""Citation markers in the forms models write them, and their renumbering when answers are joined."""
from __future__ import annotations

from rag.answering.prompt import opening
from rag.text.markers import renumber, strip_markers


def test_every_written_form_of_a_marker_is_stripped():
    for marked in ("15家[1]。", "15家【1】。", "15家[编号1]。", "15家［ 1 ］。", "15家[1,2]。", "15家 [1、2]。"):
        assert strip_markers(marked) == "15家。", marked
    assert strip_markers("2021年[共1次]") == "2021年[共1次]"  # brackets around words are not markers


def test_renumbering_maps_each_marker_and_keeps_the_unmapped():
    assert renumber("济南有15家[1]，淄博有8家[2]。", {1: 3, 2: 1}) == "济南有15家[3]，淄博有8家[1]。"
    assert renumber("15家[4]。", {1: 2}) == "15家[4]。"


def test_a_marker_cut_short_does_not_hide_a_not_found_opening():
    assert opening("[1") == "undecided" and opening("[1]资料中没有") == "not_found"
