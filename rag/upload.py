"""Put a user's uploaded file into the seeds folder without ever losing one already there."""
from __future__ import annotations

import os
import shutil
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
    name = Path(name or source.name).name  # a bare name: no path tricks from the browser
    target = seeds_dir / name
    if target.exists() and _same_bytes(source, target):
        return Stored(target, f"{name} is already in the archive (same content); nothing copied")
    if target.exists() and replace:
        partial = target.with_name(f".{name}.part")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
        return Stored(target, f"{name} replaced the earlier file of that name")
    if not target.exists():
        _copy_new(source, target)
        return Stored(target, f"{name} added")
    stem, suffix = target.stem, target.suffix
    for number in range(2, 10_000):
        candidate = seeds_dir / f"{stem} ({number}){suffix}"
        if candidate.exists() and _same_bytes(source, candidate):
            return Stored(candidate, f"{name} is already in the archive as {candidate.name}; nothing copied")
        try:
            _copy_new(source, candidate)
        except FileExistsError:
            continue
        return Stored(candidate, f"{name}: a different file of that name exists, so this one was kept as {candidate.name}")
    raise FileExistsError(f"{name}: too many files of that name in {seeds_dir}; rename it and upload again")


def _copy_new(source: Path, target: Path) -> None:
    """Create `target` only if it does not exist (O_EXCL), so two uploads never overwrite each other."""
    with open(source, "rb") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst)


def _same_bytes(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
