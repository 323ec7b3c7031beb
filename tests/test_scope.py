"""Asking part of the archive (a folder, a date range), on both stores, applied inside retrieval."""
from __future__ import annotations

import pytest

from rag.types import Scope

from formats import write_docx, write_pdf

ARTICLES = {
    "2023/05/a.txt": "甲市总工会建成职工驿站\n\n本报讯 2023年5月12日，甲市总工会今年建成职工驿站120个，覆盖全部街道。驿站为职工提供饮水和休息。\n",
    "2024/07/b.txt": "乙市总工会建成驿站\n\n本报讯 2024年7月3日，乙市总工会建成户外劳动者驿站35个，为快递员提供歇脚服务。\n",
    "2024/07/sub/c.txt": "丙县工会慰问职工\n\n本报讯 丙县工会今年慰问困难职工210人次。\n",
}
# No dateline in their text: their dates are their files' metadata (a PDF's CreationDate, Word's created).
DATED_BY_FILE = {
    "2022/d.pdf": ["丁市总工会建成职工驿站", "丁市总工会建成职工驿站48个，为环卫工人提供热水和休息。"],
    "2022/e.docx": ["戊县工会建成驿站", "戊县工会建成户外劳动者驿站16个，方便外卖骑手歇脚。"],
}


@pytest.fixture(scope="module", params=["faiss", "milvus"])
def scoped(request, tmp_path_factory, embedder):
    from rag import Assistant

    base = tmp_path_factory.mktemp(f"scope-{request.param}")
    for name, text in ARTICLES.items():
        path = base / "seeds" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (base / "seeds" / "2022").mkdir()
    write_pdf(DATED_BY_FILE["2022/d.pdf"], base / "seeds" / "2022" / "d.pdf", created="2022-03-15")
    write_docx(DATED_BY_FILE["2022/e.docx"], base / "seeds" / "2022" / "e.docx", created="2022-11-02")
    bot = Assistant(seeds_dir=base / "seeds", index_dir=base / "index", store=request.param, llm_backend="extractive",
                    embedder=embedder)
    bot.index(progress=False)
    return bot


def sources(passages) -> set[str]:
    return {p.source for p in passages}


def test_a_folder_holds_its_subfolders_and_only_them(scoped):
    question = "甲市总工会建成了多少个职工驿站？"
    assert "2023/05/a.txt" in sources(scoped.retrieve(question, k=1))  # the best hit of the whole archive ...
    found = scoped.retrieve(question, k=1, scope=Scope(folder="2024/07"))
    assert len(found) == 1 and sources(found) <= {"2024/07/b.txt", "2024/07/sub/c.txt"}  # ... is not in the folder, yet k are found
    assert sources(scoped.retrieve(question, k=5, scope=Scope(folder="2024/07/sub"))) == {"2024/07/sub/c.txt"}


def test_a_date_range_keeps_the_articles_dated_in_it(scoped):
    question = "总工会建成了多少个驿站？"
    assert sources(scoped.retrieve(question, k=5, scope=Scope(since="2024-01-01"))) == {"2024/07/b.txt"}
    assert sources(scoped.retrieve(question, k=5, scope=Scope(since="2023-01-01", until="2023-12-31"))) == {"2023/05/a.txt"}
    assert sources(scoped.retrieve(question, k=5, scope=Scope(since="2023-05-12", until="2024-07-03"))) == {"2023/05/a.txt", "2024/07/b.txt"}


def test_a_file_without_a_dateline_is_dated_by_its_metadata(scoped):
    question = "工会建成了多少个驿站？"
    assert sources(scoped.retrieve(question, k=5, scope=Scope(until="2022-12-31"))) == set(DATED_BY_FILE)
    assert sources(scoped.retrieve(question, k=5, scope=Scope(since="2022-11-01", until="2022-11-30"))) == {"2022/e.docx"}
    from rag import Assistant
    from rag.desk.articles import catalogue

    reopened = Assistant(seeds_dir=scoped.config.seeds_dir, index_dir=scoped.config.index_dir, store=scoped.config.store,
                         llm_backend="extractive", embedder=scoped.embedder)  # the dates are kept with the index, not only in this process
    dated = {e.source: e.date for e in catalogue(reopened.retriever.index)}
    assert dated["2022/d.pdf"] == "2022-03-15" and dated["2022/e.docx"] == "2022-11-02" and dated["2023/05/a.txt"] == "2023-05-12"


def test_a_scope_that_matches_nothing_finds_nothing_and_the_answer_is_a_refusal(scoped):
    assert scoped.retrieve("驿站", k=5, scope=Scope(folder="2031")) == []
    answer = scoped.ask("甲市总工会建成了多少个职工驿站？", scope=Scope(since="2030-01-01"))
    assert answer.refused and answer.citations == []
    assert not scoped.ask("甲市总工会建成了多少个职工驿站？", scope=Scope(folder="2023")).refused
    with pytest.raises(ValueError, match="`since` is a day written YYYY-MM-DD"):
        Scope(since="May 2023")


def test_one_file_is_indexed_again_on_request_and_the_others_are_kept(scoped):
    plain = scoped.index(progress=False)
    assert plain.changed == [] and plain.embedded == 0
    report = scoped.index(progress=False, again={"2024/07/b.txt"})
    assert report.changed == ["2024/07/b.txt"] and report.embedded >= 1
    assert sorted(report.unchanged) == ["2022/d.pdf", "2022/e.docx", "2023/05/a.txt", "2024/07/sub/c.txt"]
    assert sources(scoped.retrieve("乙市总工会建成了多少个驿站？", k=1, scope=Scope(since="2024-01-01"))) == {"2024/07/b.txt"}
    assert sources(scoped.retrieve("丁市总工会建成了多少个驿站？", k=1, scope=Scope(since="2022-03-15", until="2022-03-15"))) == {"2022/d.pdf"}
