from __future__ import annotations

import pytest

from rag.clean import clean, is_page_break, remove_pinyin
from rag.loaders.decode import SkippedFileError, UnreadableFileError, decode
from rag.text.script import to_search_form


def test_glued_pinyin_is_removed():
    assert remove_pinyin("團結(jié)") == "團結"
    assert remove_pinyin("實現(xiàn)就業(yè)") == "實現就業"


def test_real_parentheses_survive():
    for text in ("本报讯(记者李丹青 邹倜然)", "劳动奖状(章)", "職工職業(行業)", "the (de) particle", "2~3(场)"):
        assert remove_pinyin(text) == text


def test_page_break_inside_a_word_is_rejoined():
    text = "福州市总工会党组成员熊建\n\n军说。\n"
    paragraphs = clean(text)
    assert [p.text for p in paragraphs] == ["福州市总工会党组成员熊建军说。"]


def test_headlines_are_not_joined_to_their_body():
    assert not is_page_break("多走动 常联系 聊得开 谈得拢", "绍兴柯桥区百名工会干部进千企")
    assert not is_page_break("山东省总出台工友创业计划助力乡村振兴", "本报讯(记者丛民)山东省总工会近日印发计划。")
    assert not is_page_break("“各打各锣、各吹各号”不见了", "打牢工会组织基础,是推行“一肩挑”的关键。")


def test_short_fragment_joined_when_a_word_spans_the_break():
    assert is_page_break("柯桥区是浙江省第一批县级工会先行改", "革试点之一。为把工会组织建设得更有活力。")


def test_repeated_paragraphs_are_kept_once(seed_files):
    seed = seed_files[2]  # 002 repeats some paragraphs two or three times
    raw = decode(seed)
    texts = [p.text for p in clean(raw)]
    assert len(texts) == len(set(texts))
    assert raw.count("本报讯(记者杨明清)记者日前从青岛市总工会获悉") == 3
    assert sum("记者日前从青岛市总工会获悉" in t for t in texts) == 1


def test_every_cleaned_character_points_back_into_the_file(seed_files):
    for seed in seed_files:
        raw = decode(seed)
        for p in clean(raw):
            assert len(p.text) == len(p.offsets)
            assert all(raw[o] == c for c, o in zip(p.text, p.offsets))
            assert list(p.offsets) == sorted(p.offsets)


def test_seed_pinyin_is_gone_but_text_kept(seed_files):
    raw = decode(seed_files[4])
    assert "團結(jié)" in raw
    cleaned = "\n".join(p.text for p in clean(raw))
    assert "(jié)" not in cleaned and "團結引領" in cleaned


@pytest.mark.parametrize("encoding", ["gb18030", "big5"])
def test_legacy_encodings_are_decoded(tmp_path, seed_files, encoding):
    text = decode(seed_files[3])  # traditional Chinese, representable in both encodings
    sample = "\n".join(text.splitlines()[:6])
    path = tmp_path / "legacy.txt"
    path.write_bytes(sample.encode(encoding, errors="strict"))
    assert decode(path) == sample


def test_undecodable_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "garbage.txt"
    path.write_bytes(bytes(range(0x80, 0x100)) * 20)
    with pytest.raises(UnreadableFileError, match="garbage.txt"):
        decode(path)


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"])
def test_empty_or_binary_file_is_skipped(tmp_path, content):
    path = tmp_path / "odd.txt"
    path.write_bytes(content)
    with pytest.raises(SkippedFileError, match="odd.txt"):
        decode(path)


def test_search_form_is_simplified_and_normalised():
    assert to_search_form("樂陵市總工會") == "乐陵市总工会"
    assert to_search_form("１５個") == "15个"
