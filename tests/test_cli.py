from __future__ import annotations

import subprocess
import sys

from rag.cli import main
from rag.stores.faiss import FaissStore

from conftest import copy_of


def test_search_prints_source_title_score_and_passage(assistant, capsys):
    code = main(["--seeds", str(assistant.config.seeds_dir), "--index", str(assistant.config.index_dir),
                 "search", "湖湘劳模工匠馆的展示面积有多大？", "-k", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "000_1d8e9ba56c338e16.txt" in out and "score=" in out and "1000平方米" in out
    assert out.count("score=") == 2


def test_index_command_reports_counts(assistant, capsys):
    code = main(["--seeds", str(assistant.config.seeds_dir), "--index", str(assistant.config.index_dir), "index"])
    assert code == 0
    assert "0 chunks embedded" in capsys.readouterr().out


def test_index_compact_merges_the_segments_an_added_file_wrote(assistant, tmp_path, capsys):
    seeds, index_dir = copy_of(assistant, tmp_path)
    (seeds / "new.txt").write_text("测试市总工会开展帮扶活动\n\n本报讯 测试市总工会今年为职工发放帮扶金320万元。\n", encoding="utf-8")
    assert main(["--seeds", str(seeds), "--index", str(index_dir), "index"]) == 0
    assert len(FaissStore.load(index_dir).segments) == 2  # the added file went into a segment of its own
    assert main(["--seeds", str(seeds), "--index", str(index_dir), "index", "--compact"]) == 0
    out = capsys.readouterr().out
    assert "0 chunks embedded" in out and "compact" in out
    compacted = FaissStore.load(index_dir)
    assert len(compacted.segments) == 1 and any(c.source == "new.txt" for c in compacted.iter_chunks())


def test_errors_are_one_clear_line_and_nonzero(tmp_path, capsys):
    code = main(["--seeds", str(tmp_path / "nope"), "--index", str(tmp_path / "index"), "search", "问题"])
    err = capsys.readouterr().err
    assert code == 2 and "seeds folder" in err and "does not exist" in err


def test_help_does_not_import_heavy_libraries():
    probe = "import sys, rag.cli; print(any(m in sys.modules for m in ('torch', 'sentence_transformers', 'faiss')))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_ask_prints_the_answer_once(assistant, capsys):
    code = main(["--seeds", str(assistant.config.seeds_dir), "--index", str(assistant.config.index_dir),
                 "ask", "--extractive", "湖湘劳模工匠馆的展示面积有多大？"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("1000平方米") == 1 and "000_1d8e9ba56c338e16.txt" in out
