"""The exported graphs: the arithmetic of the model folder and of the judge, run without torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from rag.config import Config
from rag.graph import ENCODER, load_graph

TEXTS = ["济南市总工会已建设户外劳动者驿站526家。", "The weather is nice", "短"]


def test_passages_are_embedded_and_judged_without_importing_torch(embedder):
    """A seeds build and the judge start without torch (seconds at every cold start)."""
    script = (
        "import sys, json\n"
        "from rag.config import Config\n"
        "from rag.embed import load_embedder\n"
        "from rag.judge import Candidate, load_judge\n"
        "config = Config()\n"
        "vectors = load_embedder(config).encode_passages(json.loads(sys.argv[1]))\n"
        "judged = load_judge(config.embed_model_path).score('济南建了多少家驿站？', [Candidate(sys.argv[2])])\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'vectors': vectors.tolist(), 'judged': float(judged[0])}))\n"
    )
    embedder._load()  # the graphs exist before the cold process starts (`rag models install` exports them)
    out = subprocess.run([sys.executable, "-c", script, json.dumps(TEXTS), TEXTS[0]], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    assert np.abs(np.array(result["vectors"], np.float32) - embedder.encode_passages(TEXTS)).max() < 1e-5
    assert result["judged"] >= Config().judge_threshold


def test_the_encoder_graph_gives_the_hidden_states_of_torch(embedder):
    import torch
    from transformers import AutoModel

    embedder._load()
    ids, mask, _ = embedder._batch(["passage: " + t for t in TEXTS], False)
    with torch.inference_mode():
        expected = AutoModel.from_pretrained(str(embedder.path)).eval()(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()
    hidden = embedder._model(ids, mask, 2)
    real = mask.astype(bool)  # padding states differ (they are never read)
    assert np.abs(hidden[real] - expected[real]).max() < 1e-4


def test_a_missing_graph_is_exported_at_first_use(tmp_path, embedder):
    """A model folder without its graph (installed before graphs were, or copied without it) still embeds."""
    folder = tmp_path / "e5"
    folder.mkdir()
    for path in embedder.path.iterdir():
        if path.suffix != ".onnx":
            (folder / path.name).symlink_to(path)
    graph = load_graph(folder / ENCODER, folder)
    assert (folder / ENCODER).exists() and not list(folder.glob("*.tmp"))
    embedder._load()
    ids, mask, _ = embedder._batch(["passage: " + TEXTS[0]], False)
    assert np.abs(graph(ids, mask, 1) - embedder._model(ids, mask, 1)).max() < 1e-5


def test_int8_passages_are_near_fp32_and_an_index_tells_them_apart(embedder, config):
    """The int8 graph (made from the fp32 one) gives vectors close to fp32's; its name differs, so an
    index built with one is reported stale by the other instead of mixing vectors."""
    import dataclasses

    from rag.embed import load_embedder

    int8 = load_embedder(dataclasses.replace(config, embed_precision="int8"))
    texts = TEXTS + ["福州市总工会将为就读职工提供每人每学年1000元的助学金。"]
    cosine = (int8.encode_passages(texts) * embedder.encode_passages(texts)).sum(1)
    assert cosine.min() > 0.98 and cosine.max() < 1 - 1e-6  # close, and not the fp32 graph itself
    assert int8.name != embedder.name and int8.name.endswith(":int8")
