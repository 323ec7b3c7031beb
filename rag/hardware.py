"""What the machine gives the models: its physical cores, which llama.cpp, ONNX Runtime and torch
each use one thread per. One place for it, not a helper borrowed from a stage."""
from __future__ import annotations

import os


def physical_cores() -> int:
    """llama.cpp and torch run best with one thread per physical core, not per hyperthread."""
    try:
        with open("/proc/cpuinfo") as f:
            blocks = f.read().split("\n\n")
    except OSError:
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for block in blocks:
        fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in block.splitlines())}
        if "processor" in fields:
            cores.add((fields.get("physical id", "0"), fields.get("core id", fields["processor"])))
    return max(1, len(cores))
