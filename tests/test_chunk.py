from __future__ import annotations

from rag.chunk import chunk_articles, sentences
from rag.clean import clean
from rag.loaders.decode import decode
from rag.text.script import to_search_form
from rag.config import Config
from rag.segment import segment


def chunks_of(seed, config=Config()):
    raw = decode(seed)
    articles = segment(seed.name, clean(raw))
    return raw, articles, chunk_articles(articles, config)


def test_chunk_sizes_follow_the_settings(seed_files):
    config = Config()
    for seed in seed_files:
        _, articles, chunks = chunks_of(seed, config)
        for c in chunks:
            article = articles[c.article]
            assert len(c.text) <= config.chunk_max + config.chunk_min
            if len(article.text) >= config.chunk_min:
                assert len(c.text) >= config.chunk_min * 0.5, c.text


def test_chunks_never_cross_articles_and_point_into_the_file(seed_files):
    for seed in seed_files:
        raw, articles, chunks = chunks_of(seed)
        for c in chunks:
            a = articles[c.article]
            assert a.start <= c.start < c.end <= a.end
            assert raw[c.start] == c.text[0]
            assert raw[c.end - 1] == c.text[-1]


def test_consecutive_chunks_share_one_sentence(seed_files):
    _, articles, chunks = chunks_of(seed_files[4])
    pairs = [(a, b) for a, b in zip(chunks, chunks[1:]) if a.article == b.article]
    assert pairs
    for a, b in pairs:
        last = sentences_of(a.text)[-1]
        assert b.text.startswith(last) or len(last) >= Config().chunk_max // 2


def sentences_of(text):
    import re

    return [s for s in re.findall(r"[^。！？!?；;…]+[。！？!?；;…]*[”’」』）)]*", text.replace("\n", "")) if s]


def test_search_text_has_title_and_is_simplified(seed_files):
    _, _, chunks = chunks_of(seed_files[3])
    for c in chunks:
        assert c.search_text.startswith(to_search_form(c.title) + "\n")
    assert all("總" not in c.search_text and "會" not in c.search_text for c in chunks)


def test_sentences_split_on_chinese_punctuation(seed_files):
    _, articles, _ = chunks_of(seed_files[0])
    ss = sentences(articles[0])
    assert len(ss) > 10
    assert all(s.text.strip() for s in ss)


def test_a_quotation_keeps_its_speaker():
    from rag.text.sentences import split_sentences

    text = "“实训基地是专门为学员而建的服务项目。”福州市总工会党组成员熊建军说。新基地下月启用。"
    spans = [text[a:b] for a, b in split_sentences(text)]
    assert spans == ["“实训基地是专门为学员而建的服务项目。”福州市总工会党组成员熊建军说。", "新基地下月启用。"]
    text = "「我們會繼續努力。」他說，「明年再擴大。」工會隨後公布了名單。"
    spans = [text[a:b] for a, b in split_sentences(text)]
    assert spans[0] == "「我們會繼續努力。」他說，「明年再擴大。」" and spans[1] == "工會隨後公布了名單。"
    text = "“今年要办好十件实事。”会议结束后，代表们参观了基地。"
    assert [text[a:b] for a, b in split_sentences(text)][0] == "“今年要办好十件实事。”"
