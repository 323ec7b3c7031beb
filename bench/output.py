"""What every bench script ends with: the results printed, and kept as JSON when asked."""
from __future__ import annotations

import json
from pathlib import Path


def report(results: dict, out: Path | None) -> None:
    text = json.dumps(results, indent=1, ensure_ascii=False)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
