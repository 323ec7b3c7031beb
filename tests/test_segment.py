from __future__ import annotations

from rag.clean import clean
from rag.loaders.decode import decode
from rag.segment import is_headline, segment


def articles_of(seed):
    return segment(seed.name, clean(decode(seed)))


def test_dateline_splits_articles_without_headlines(seed_files):
    articles = articles_of(seed_files[3])  # 003: five stories, each opening with "…報道"
    assert len(articles) == 5
    assert all("報道" in a.paragraphs[0].text[:40] for a in articles)
    assert any("福州工匠學院" in a.title for a in articles)


def test_headline_blocks_become_titles(seed_files):
    titles = [a.title for a in articles_of(seed_files[1])]
    assert any("青海省总关爱艰苦地区一线职工" in t for t in titles)
    assert any("深圳福田区设立“小蜜蜂节”" in t for t in titles)


def test_subheads_stay_inside_their_article(seed_files):
    articles = articles_of(seed_files[4])  # 004: one long feature with section subheads
    assert len(articles) == 1
    assert "黨工共建 推進基層組織培根鑄魂" in articles[0].text


def test_articles_keep_file_offsets_and_order(seed_files):
    for seed in seed_files:
        raw = decode(seed)
        articles = articles_of(seed)
        assert len(articles) >= 1
        assert all(a.source == seed.name for a in articles)
        starts = [a.start for a in articles]
        assert starts == sorted(starts)
        for a in articles:
            assert raw[a.start] == a.paragraphs[0].text[0]
            assert raw[a.end - 1] == a.paragraphs[-1].text[-1]


def test_headline_heuristic():
    assert is_headline("湖南省首家劳模工匠主题展馆开馆迎客")
    assert not is_headline("此外,济南市总通过制度保障、资金保障、人员保障等构建驿站良性运行的三重保障。")
    assert not is_headline("本报记者 李润钊")
