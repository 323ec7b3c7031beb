"""HTTP API benchmark: time to first token through `rag serve` against in-process, and
concurrent clients.

    .venv/bin/python bench/api.py                  # extractive backend, then the 1.5B model
    .venv/bin/python bench/api.py --skip-model     # extractive only (no answer model)

1. The 13 answerable seeds_dev questions, streamed: time to the first text piece in-process
   (`Assistant.ask_stream`) and through the server (official `openai` client, SSE).
2. 4 clients at once, each asking all 13 questions (non-streaming): requests/s and latency
   median / p95, with the extractive backend and with the in-process 1.5B model, whose
   questions queue one at a time.
The server runs over a copy of seeds/ with its own index (built on start).
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "tests" / "data" / "seeds_dev.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip() and json.loads(line)["answerable"]]
CLIENTS = 4


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def start(work: Path, backend: list[str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "rag.server", "--seeds", str(work / "seeds"), "--index", str(work / "index"),
                             "--port", str(port), *backend], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("the server exited; run it by hand to see why")
            time.sleep(1)
    raise SystemExit("the server did not start")


def ttft_in_process(work: Path, settings: dict) -> list[float]:
    from rag import Assistant

    bot = Assistant(seeds_dir=work / "seeds", index_dir=work / "index", **settings)
    bot.warm()
    out = []
    for q in QUESTIONS:
        started = time.perf_counter()
        for _ in bot.ask_stream(q):
            out.append(time.perf_counter() - started)
            break
    return out


def ttft_server(url: str) -> list[float]:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=600)
    out = []
    for q in QUESTIONS:
        started = time.perf_counter()
        with client.chat.completions.create(model="zhiwen", messages=[{"role": "user", "content": q}], stream=True) as stream:
            for chunk in stream:
                if chunk.choices[0].delta.content or chunk.choices[0].finish_reason:
                    out.append(time.perf_counter() - started)
                    break
    return out


def concurrent(url: str, per_client: int) -> dict:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=1200)

    def one(q: str) -> float:
        started = time.perf_counter()
        client.chat.completions.create(model="zhiwen", messages=[{"role": "user", "content": q}])
        return time.perf_counter() - started

    jobs = [QUESTIONS[i % len(QUESTIONS)] for i in range(CLIENTS * per_client)]
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        latencies = list(pool.map(one, jobs))
    wall = time.perf_counter() - started
    return {"clients": CLIENTS, "requests": len(jobs), "requests_per_s": round(len(jobs) / wall, 2),
            "latency_median_s": round(statistics.median(latencies), 2), "latency_p95_s": round(p95(latencies), 2)}


def run(work: Path, name: str, backend: list[str], settings: dict, per_client: int) -> dict:
    proc, url = start(work, backend)
    try:
        server = ttft_server(url)
        result = {"ttft_server_median_s": round(statistics.median(server), 3), "concurrent": concurrent(url, per_client)}
    finally:
        proc.terminate()
        proc.wait(30)
    local = ttft_in_process(work, settings)
    result["ttft_in_process_median_s"] = round(statistics.median(local), 3)
    print(name, json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "seeds", work / "seeds")
        results = {"extractive": run(work, "extractive", ["--extractive"], {"llm_backend": "extractive"}, len(QUESTIONS))}
        if not args.skip_model:
            results["qwen2.5-coder-1.5b"] = run(work, "1.5B", [], {}, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
