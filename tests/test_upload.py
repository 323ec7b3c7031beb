"""Uploads never overwrite a file in the seeds folder unless the user asks."""
from __future__ import annotations

import os

from rag.upload import store_upload


def _file(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_new_name_is_copied_with_the_folders_mode(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    upload = _file(tmp_path / "up" / "a.txt", "甲")
    upload.chmod(0o600)  # as Gradio's temporary files are
    stored = store_upload(upload, seeds)
    assert stored.path == seeds / "a.txt" and stored.path.read_text(encoding="utf-8") == "甲"
    mask = os.umask(0)
    os.umask(mask)
    assert stored.path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_same_name_upload_is_kept_beside_the_old_file(tmp_path):
    seeds = tmp_path / "seeds"
    old = _file(seeds / "a.txt", "原文")
    first = store_upload(_file(tmp_path / "u1" / "a.txt", "新一"), seeds)
    second = store_upload(_file(tmp_path / "u2" / "a.txt", "新二"), seeds)
    assert old.read_text(encoding="utf-8") == "原文"
    assert first.path.name == "a (2).txt" and first.path.read_text(encoding="utf-8") == "新一"
    assert second.path.name == "a (3).txt" and "a (3).txt" in second.note


def test_identical_content_is_not_copied_twice(tmp_path):
    seeds = tmp_path / "seeds"
    _file(seeds / "a.txt", "原文")
    stored = store_upload(_file(tmp_path / "u" / "a.txt", "原文"), seeds)
    assert stored.path == seeds / "a.txt" and "already" in stored.note
    assert sorted(p.name for p in seeds.iterdir()) == ["a.txt"]


def test_replace_only_when_asked(tmp_path):
    seeds = tmp_path / "seeds"
    _file(seeds / "a.txt", "原文")
    stored = store_upload(_file(tmp_path / "u" / "a.txt", "新文"), seeds, replace=True)
    assert stored.path == seeds / "a.txt" and stored.path.read_text(encoding="utf-8") == "新文"
    assert "replaced" in stored.note
    assert sorted(p.name for p in seeds.iterdir()) == ["a.txt"]  # no partial file left behind


def test_a_browser_supplied_path_cannot_escape_the_folder(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    stored = store_upload(_file(tmp_path / "u" / "x.txt", "甲"), seeds, name="../../etc/evil.txt")
    assert stored.path == seeds / "evil.txt"


def test_a_hidden_name_is_stored_where_the_index_finds_it(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    upload = tmp_path / ".notes.txt"
    upload.write_text("本报讯 测试。", encoding="utf-8")
    stored = store_upload(upload, seeds)
    assert stored.path == seeds / "notes.txt" and "hidden" in stored.note
    from rag.index import seed_files

    assert list(seed_files(seeds)) == ["notes.txt"]


def test_one_file_uploaded_twice_at_once_is_stored_once(tmp_path):
    """The probe: the same 22 MB file uploaded twice at once was stored twice, the second with the
    false message that a different file of that name exists."""
    import threading

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    upload = tmp_path / "big.txt"
    upload.write_bytes("职工驿站".encode() * 2_000_000)  # 24 MB: long enough to copy that the uploads overlap
    notes, start = [], threading.Barrier(2)

    def send():
        start.wait()
        notes.append(store_upload(upload, seeds).note)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in seeds.iterdir()) == ["big.txt"], notes
    assert sorted(notes) == ["big.txt added", "big.txt is already in the archive (same content); nothing copied"]


def test_a_folder_without_hard_links_still_takes_uploads_without_overwriting(tmp_path, monkeypatch):
    """FAT, exFAT and some network shares refuse hard links (EPERM)."""
    def no_links(source, target):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    first = store_upload(_file(tmp_path / "a" / "page.txt", "本报讯 一。"), seeds)
    second = store_upload(_file(tmp_path / "b" / "page.txt", "本报讯 二。"), seeds)
    assert first.note == "page.txt added" and second.path.name == "page (2).txt"
    assert (seeds / "page.txt").read_text(encoding="utf-8") == "本报讯 一。" and sorted(p.name for p in seeds.iterdir()) == ["page (2).txt", "page.txt"]
