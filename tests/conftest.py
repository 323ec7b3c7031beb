from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
QA = ROOT / "tests" / "data" / "seeds_dev.jsonl"  # vendored from ../shared/qa: a user's clone has no ../shared


@pytest.fixture(scope="session")
def seed_files() -> list[Path]:
    files = sorted(SEEDS.glob("*.txt"))
    assert len(files) == 5, "the five seed files must be in seeds/"
    return files


@pytest.fixture(scope="session")
def config():
    from rag.config import load_config

    return load_config()


@pytest.fixture(scope="session")
def embedder(config):
    from rag.embed import load_embedder

    return load_embedder(config)


@pytest.fixture(scope="session")
def assistant(tmp_path_factory, embedder):
    """An Assistant over a private copy of the seeds, sharing the loaded model."""
    from rag import Assistant

    base = tmp_path_factory.mktemp("assistant")
    shutil.copytree(SEEDS, base / "seeds")
    bot = Assistant(seeds_dir=base / "seeds", index_dir=base / "index", embedder=embedder)
    bot.index(progress=False)
    return bot


@pytest.fixture(scope="session")
def milvus_assistant(tmp_path_factory, embedder):
    """The same over Milvus Lite: the store tests and the retrieval tests run on both stores."""
    from rag import Assistant

    base = tmp_path_factory.mktemp("milvus-assistant")
    shutil.copytree(SEEDS, base / "seeds")
    bot = Assistant(seeds_dir=base / "seeds", index_dir=base / "index", store="milvus", embedder=embedder)
    bot.index(progress=False)
    return bot


def sharing(assistant, **settings):
    """Another Assistant over the same seeds and index, holding the same embedder and opened index:
    its own settings (and answer model) without loading anything again."""
    from rag import Assistant

    return Assistant(seeds_dir=assistant.config.seeds_dir, index_dir=assistant.config.index_dir,
                     embedder=assistant.embedder, retriever=assistant.retriever, **settings)


def copy_of(origin, folder: Path) -> tuple[Path, Path]:
    """A private copy under `folder` of an Assistant's seeds and index (or of the seeds/ and index/ in a
    folder), for a test that changes them."""
    sources = (origin / "seeds", origin / "index") if isinstance(origin, Path) else (origin.config.seeds_dir, origin.config.index_dir)
    seeds, index = folder / "seeds", folder / "index"
    shutil.copytree(sources[0], seeds)
    shutil.copytree(sources[1], index)
    return seeds, index


@pytest.fixture(params=["faiss", "milvus"])
def any_assistant(request):
    return request.getfixturevalue("assistant" if request.param == "faiss" else "milvus_assistant")


@pytest.fixture(scope="session")
def qa_items() -> list[dict]:
    if not QA.exists():
        pytest.fail(f"{QA} is missing; it is part of the repository")
    return [json.loads(line) for line in QA.read_text(encoding="utf-8").splitlines() if line.strip()]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_process(command: list[str], ready_url: str, log_path: Path, env: dict | None = None):
    """Start a server process and wait until `ready_url` answers; fail with the end of its log otherwise."""
    import subprocess
    import sys
    import time
    import urllib.request

    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, *command], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{command[0]} exited: {log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(ready_url, timeout=2)
            return proc
        except OSError:
            time.sleep(1)
    proc.terminate()
    pytest.fail(f"{command[0]} did not start within 180 s")


def segment_dir(index_dir: Path, i: int = 0) -> Path:
    """The folder of the current FAISS index's i-th segment (a build from scratch writes one)."""
    generation = index_dir / (index_dir / "CURRENT").read_text()
    return index_dir / json.loads((generation / "manifest.json").read_text())["segments"][i]["name"]


def as_before_segments(index_dir: Path) -> Path:
    """Turn a one-segment index into the layout written before segments (every file in the generation
    folder, its checksums in the manifest), as a user upgrading from an older version has it."""
    generation = index_dir / (index_dir / "CURRENT").read_text()
    manifest = json.loads((generation / "manifest.json").read_text())
    (segment,) = manifest.pop("segments")
    for path in (index_dir / segment["name"]).iterdir():
        if path.name != ".verified":
            shutil.move(path, generation / path.name)
    (generation / "deleted.npy").unlink()
    (generation / ".verified").unlink(missing_ok=True)
    manifest["checksums"] = segment["checksums"]
    (generation / "manifest.json").write_text(json.dumps(manifest))
    return generation
