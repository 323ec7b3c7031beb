"""Put a user's uploaded file into the seeds folder without ever losing one already there."""
from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stored:
    path: Path  # where the upload now lives in the seeds folder
    note: str  # what happened, in words for the user


def store_upload(source: Path, seeds_dir: Path, name: str | None = None, replace: bool = False) -> Stored:
    """Copy `source` into `seeds_dir` as `name`.

    A different file of the same name is kept: the upload gets `name (2).txt`,
    unless `replace` says the user wants the old one replaced. An identical file
    is not copied twice. New files get the folder's default mode (umask), not
    the upload's temporary-file mode.
    """
    given = Path(name or source.name).name  # a bare name: no path tricks from the browser
    name = given.lstrip(".")  # the index skips hidden files: `.notes.txt` would be "added" and never found
    if not name:
        raise FileExistsError(f"{given!r} is not a name a file can have in the archive; rename it and upload again")
    renamed = f" (as {name}: a name starting with a dot is hidden)" if name != given else ""
    target = seeds_dir / name
    # The upload is copied whole to a private file first, then linked into place: a file of the
    # archive is never seen half-written, and two uploads of one file at once store it once.
    partial = seeds_dir / f".{name}.{uuid.uuid4().hex}.part"
    shutil.copyfile(source, partial)
    try:
        if replace and target.exists() and not _same_bytes(partial, target):
            os.replace(partial, target)
            return Stored(target, f"{name} replaced the earlier file of that name{renamed}")
        if _placed(partial, target):
            return Stored(target, f"{name} added{renamed}")
        if _same_bytes(partial, target):  # there before, or another upload of the same file got there first
            return Stored(target, f"{name} is already in the archive (same content); nothing copied")
        stem, suffix = target.stem, target.suffix
        for number in range(2, 10_000):
            candidate = seeds_dir / f"{stem} ({number}){suffix}"
            if candidate.exists() and _same_bytes(partial, candidate):
                return Stored(candidate, f"{name} is already in the archive as {candidate.name}; nothing copied")
            if _placed(partial, candidate):
                return Stored(candidate, f"{name}: a different file of that name exists, so this one was kept as {candidate.name}")
        raise FileExistsError(f"{name}: too many files of that name in {seeds_dir}; rename it and upload again")
    finally:
        partial.unlink(missing_ok=True)


def _placed(partial: Path, target: Path) -> bool:
    """Give the whole copy `target`'s name unless that name is taken (a hard link never replaces).
    Where the folder's file system has no hard links (FAT, exFAT, some network shares), the copy
    is written to a new file that must not exist yet (O_EXCL): never replaced either."""
    try:
        os.link(partial, target)
    except FileExistsError:
        return False
    except OSError:  # no hard links here
        try:
            with open(partial, "rb") as src, open(target, "xb") as dst:
                shutil.copyfileobj(src, dst)
        except FileExistsError:
            return False
    return True


def _same_bytes(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
