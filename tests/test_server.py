"""The HTTP API, driven by the official `openai` client and by plain HTTP against a live `rag serve`."""
from __future__ import annotations

import json
import logging
import statistics
import time

import httpx
import pytest
from conftest import copy_of, free_port, start_process

KEY = "test-key"


@pytest.fixture(scope="module")
def served(assistant, tmp_path_factory):
    """`python -m rag serve` with the extractive backend and an API key, on a free loopback port;
    its URL and the folder holding its seeds, index and conversation file."""
    port = free_port()
    base = tmp_path_factory.mktemp("server")
    copy_of(assistant, base)
    url = f"http://127.0.0.1:{port}"
    proc = start_process(["-m", "rag", "serve", "--seeds", str(base / "seeds"), "--index", str(base / "index"), "--port", str(port), "--extractive"],
                         f"{url}/healthz", base / "server.log", {"RAG_API_KEY": KEY})
    yield url, base
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def server(served):
    return served[0]


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)


def test_openai_client_gets_an_answer_with_citations(client):
    completion = client.chat.completions.create(model="zhiwen", messages=[{"role": "user", "content": "宜昌市在全省建立了多少家疗休养基地？"}])
    text = completion.choices[0].message.content
    extra = completion.model_extra
    assert "15" in text and "[1]" in text and extra["refused"] is False and extra["refusal"] is None
    first = extra["citations"][0]
    assert first["number"] == 1 and first["source"] == "000_1d8e9ba56c338e16.txt" and first["title"]
    assert 0 <= first["start"] < first["end"] and "15" in first["text"]


def test_openai_client_streams_and_the_last_chunk_carries_the_sources(client):
    stream = client.chat.completions.create(model="zhiwen", stream=True,
                                            messages=[{"role": "user", "content": "樂陵市總工會2022年成立了多少個基層工會？"}])
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    last = chunks[-1]
    assert len(pieces) >= 1 and last.choices[0].finish_reason == "stop"
    assert "15" in last.model_extra["answer"] and last.model_extra["citations"][0]["source"] == "004_27a72bc7b7d6e54f.txt"


def test_a_refusal_is_a_normal_completion_with_a_flag(client):
    completion = client.chat.completions.create(model="zhiwen", messages=[{"role": "user", "content": "广州市总工会为外卖骑手建了多少个驿站？"}])
    assert completion.model_extra["refused"] is True and completion.model_extra["citations"] == []
    assert "没有找到" in completion.choices[0].message.content
    assert completion.model_extra["refusal"]["kind"] in ("unanswered", "reader") and completion.model_extra["refusal"]["detail"]


def test_history_comes_from_the_messages(client):
    messages = [{"role": "user", "content": "乐陵市总工会2022年成立了多少个基层工会？"},
                {"role": "assistant", "content": "15个[1]"},
                {"role": "user", "content": "新增会员多少人？"}]
    completion = client.chat.completions.create(model="zhiwen", messages=messages)
    assert "2538" in completion.choices[0].message.content
    assert completion.model_extra["citations"][0]["source"] == "004_27a72bc7b7d6e54f.txt"


def test_models_search_and_health(client, server):
    assert [m.id for m in client.models.list()] == ["zhiwen"]
    found = httpx.post(f"{server}/v1/search", json={"query": "湖湘劳模工匠馆的展示面积", "k": 3},
                       headers={"Authorization": f"Bearer {KEY}"}).json()["data"]
    assert len(found) == 3 and found[0]["score"] >= found[1]["score"] and any("1000" in p["text"] for p in found)
    health = httpx.get(f"{server}/healthz").json()  # no key needed to ask whether it is up
    assert health["status"] == "ok" and health["files"] == 5 and health["chunks"] > 0


@pytest.mark.parametrize("body, status, needle", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"model": "zhiwen", "messages": []}).encode(), 400, "non-empty list"),
    (json.dumps({"model": "zhiwen", "messages": [{"role": "user", "content": "   "}]}).encode(), 400, "empty"),
    (json.dumps({"model": "zhiwen", "messages": [{"role": "user", "content": "问" * 5000}]}).encode(), 400, "limit"),
    (json.dumps({"model": "gpt-4", "messages": [{"role": "user", "content": "你好"}]}).encode(), 404, "does not exist"),
    (b"x" * 1_000_001, 413, "limit"),
])
def test_bad_requests_get_openai_style_errors(server, body, status, needle):
    response = httpx.post(f"{server}/v1/chat/completions", content=body,
                          headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    error = response.json()["error"]
    assert response.status_code == status and needle in error["message"] and error["type"]
    if status == 404:
        assert error["code"] == "model_not_found" and error["param"] == "model"


def test_the_api_key_is_required(server):
    from openai import AuthenticationError, OpenAI

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = httpx.get(f"{server}/v1/models", headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0).models.list()


def test_binding_beyond_loopback_without_a_key_warns(assistant, monkeypatch, caplog):
    import uvicorn

    from rag.server import serve

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)  # the warning is what is tested, not a socket
    monkeypatch.setattr(assistant, "warm", lambda: None)
    with caplog.at_level(logging.WARNING, logger="rag.server"):
        serve(assistant, host="0.0.0.0", port=1, api_key=None)
        assert "without an API key" in caplog.text
        caplog.clear()
        serve(assistant, host="127.0.0.1", port=1, api_key=None)
        serve(assistant, host="0.0.0.0", port=1, api_key="k")
        assert "without an API key" not in caplog.text


def test_a_file_dropped_in_is_indexed_in_the_background_while_every_route_answers(assistant, tmp_path):
    """The probe: a 40k-character file dropped into the seeds kept /healthz and /v1/search waiting
    56 s while it was embedded. Now a worker indexes it; the routes answer from the last whole
    index meanwhile, /healthz says how far it is, and the file is searchable once it is whole."""
    port = free_port()
    copy_of(assistant, tmp_path)
    url = f"http://127.0.0.1:{port}"
    proc = start_process(["-m", "rag", "serve", "--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index"), "--port", str(port),
                          "--extractive"], f"{url}/healthz", tmp_path / "server.log", {})
    try:
        paragraphs = [f"本报讯 测试市第{i}号职工驿站今年为户外劳动者提供热水、充电和休息服务{1000 + 7 * i}人次，站长第{i}号说还将延长开放时间。"
                      for i in range(800)]
        (tmp_path / "seeds" / "dropped.txt").write_text("测试市职工驿站服务统计\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
        search = {"query": "测试市第417号职工驿站今年服务了多少人次", "k": 3}
        found = httpx.post(f"{url}/v1/search", json=search, timeout=5).json()["data"]  # notices the file, answers at once
        assert all(p["source"] != "dropped.txt" for p in found)
        health_times, search_times, seen_running, deadline = [], [], False, time.monotonic() + 400
        while time.monotonic() < deadline:
            started = time.monotonic()
            health = httpx.get(f"{url}/healthz", timeout=5).json()
            health_times.append(time.monotonic() - started)
            started = time.monotonic()
            httpx.post(f"{url}/v1/search", json=search, timeout=5).raise_for_status()
            search_times.append(time.monotonic() - started)
            indexing = health["indexing"]
            seen_running |= indexing["running"] and indexing["total"] > 0
            if not indexing["running"] and "dropped.txt" in indexing["last"].get("added", []):
                break
            time.sleep(0.2)
        assert seen_running and "dropped.txt" in indexing["last"]["added"], indexing
        typical, slowest = statistics.median(health_times + search_times), max(health_times + search_times)
        logging.getLogger(__name__).info("while indexing: median %.2f s, slowest %.2f s over %d requests", typical, slowest, 2 * len(search_times))
        # Measured here: the slowest at 0.07-0.8 s in most runs, once 2.1 s on a clean clone (before: 56 s, the
        # routes waited for the build). Timing bounds belong to benchmarks; these only tell answering from waiting.
        assert typical < 1.0 and slowest < 4.0, f"median {typical:.2f} s, slowest {slowest:.2f} s while the file was indexed"
        found = httpx.post(f"{url}/v1/search", json=search, timeout=5).json()["data"]
        assert found[0]["source"] == "dropped.txt" and str(1000 + 7 * 417) in found[0]["text"]
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_keyless_server_answers_only_json_from_its_own_addresses(assistant, tmp_path):
    """The probe: a keyless loopback server took `Content-Type: text/plain` POSTs (which any web page
    may send without asking) and any Host header (DNS rebinding could read it), and read a 500 MB
    body into memory before answering 413."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_process(["-m", "rag", "serve", "--seeds", str(assistant.config.seeds_dir), "--index", str(assistant.config.index_dir),
                          "--port", str(port), "--extractive"], f"{url}/healthz", tmp_path / "server.log",
                         {"RAG_ALLOWED_HOSTS": "zhiwen.lan"})
    try:
        search = json.dumps({"query": "宜昌市疗休养基地", "k": 1})
        plain = httpx.post(f"{url}/v1/search", content=search, headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415 and plain.json()["error"]["type"] == "invalid_request_error"
        rebound = httpx.post(f"{url}/v1/search", content=search, headers={"Content-Type": "application/json", "Host": f"evil.example:{port}"})
        assert rebound.status_code == 403 and "allowed_hosts" in rebound.json()["error"]["message"]
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"zhiwen.lan:{port}", f"[::1]:{port}"):
            found = httpx.post(f"{url}/v1/search", content=search, headers={"Content-Type": "application/json", "Host": host})
            assert found.status_code == 200 and found.json()["data"], host

        def endless():  # chunked: no Content-Length to refuse it by
            for _ in range(200):
                yield b" " * 65536

        huge = httpx.post(f"{url}/v1/search", content=endless(), headers={"Content-Type": "application/json"}, timeout=30)
        assert huge.status_code == 413 and "limit" in huge.json()["error"]["message"]
        declared = httpx.post(f"{url}/v1/search", content=b" " * 2_000_000, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413
    finally:
        proc.terminate()
        proc.wait(20)


def test_unknown_routes_and_methods_answer_in_openais_shape_and_docs_are_off(server):
    missing = httpx.get(f"{server}/v1/nothing", headers={"Authorization": f"Bearer {KEY}"})
    wrong = httpx.get(f"{server}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"})
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "Invalid URL (GET /v1/nothing)"
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{server}/docs", headers={"Authorization": f"Bearer {KEY}"}).status_code == 404  # its scripts come from a CDN
    assert httpx.get(f"{server}/openapi.json", headers={"Authorization": f"Bearer {KEY}"}).json()["info"]["title"] == "zhiwen"


def test_a_client_that_leaves_a_stream_frees_the_model(assistant, tmp_path):
    """The probe: after two abandoned streams the next question took 24.4 s instead of 3.7 s, their
    generations running on under the model lock. The real model answers here."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_process(["-m", "rag", "serve", "--seeds", str(assistant.config.seeds_dir), "--index", str(assistant.config.index_dir),
                          "--port", str(port)], f"{url}/healthz", tmp_path / "server.log", {})
    try:
        body = {"model": "zhiwen", "stream": True, "messages": [{"role": "user", "content": "乐陵市总工会2022年做了哪些工作？请详细说明。"}]}
        for _ in range(2):
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as response:
                next(response.iter_lines())  # the stream has begun; the model is reading and writing
            time.sleep(3)
        deadline = time.monotonic() + 60
        while (tmp_path / "server.log").read_text().count("stream stopped: the client left") < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert (tmp_path / "server.log").read_text().count("stream stopped: the client left") == 2
        answer = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                            json={"model": "zhiwen", "messages": [{"role": "user", "content": "宜昌市在全省建立了多少家疗休养基地？"}]}).json()
        assert "15" in answer["choices"][0]["message"]["content"]
    finally:
        proc.terminate()
        proc.wait(20)


def test_feedback_on_a_completion_is_kept_and_exported_as_a_case_rag_eval_runs(client, served, tmp_path, capsys):
    from rag.text.numbers import number_pattern
    from rag.cli import main

    url, base = served
    completion = client.chat.completions.create(model="zhiwen", messages=[{"role": "user", "content": "湖湘劳模工匠馆的展示面积有多大？"}])
    auth = {"Authorization": f"Bearer {KEY}"}
    reply = httpx.post(f"{url}/v1/feedback", json={"id": completion.id, "rating": "up", "note": "对"}, headers=auth)
    assert reply.status_code == 200 and reply.json()["rating"] == "up"
    unknown = httpx.post(f"{url}/v1/feedback", json={"id": "chatcmpl-nothere", "rating": "down"}, headers=auth)
    assert unknown.status_code == 404 and "chatcmpl-nothere" in unknown.json()["error"]["message"]
    bad = httpx.post(f"{url}/v1/feedback", json={"id": completion.id, "rating": 5}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rating"
    assert httpx.post(f"{url}/v1/feedback", json={"id": completion.id, "rating": "up"}).status_code == 401

    cases = tmp_path / "feedback.jsonl"
    assert main(["feedback", "export", str(cases), "--index", str(base / "index")]) == 0
    [item] = [json.loads(line) for line in cases.read_text(encoding="utf-8").splitlines()]
    assert item["id"] == f"feedback-{completion.id}" and item["feedback"] == "right" and item["note"] == "对"
    assert item["must"] == [[number_pattern("1000")]] and item["sources"] == ["000_1d8e9ba56c338e16.txt"]
    capsys.readouterr()
    assert main(["feedback", "--index", str(base / "index")]) == 0
    days = capsys.readouterr().out.splitlines()
    assert days[0].split() == ["day", "answers", "right", "wrong"] and days[1].split()[2] == "1"
    assert main(["eval", str(cases), "--extractive", "--seeds", str(base / "seeds"), "--index", str(base / "index")]) == 0
    assert '"answer_accuracy": 1.0' in capsys.readouterr().out


def test_search_and_answers_take_a_folder_and_a_date_range(client, server):
    auth = {"Authorization": f"Bearer {KEY}"}
    everything = httpx.post(f"{server}/v1/search", json={"query": "宜昌市疗休养基地", "k": 3}, headers=auth, timeout=60).json()["data"]
    nothing = httpx.post(f"{server}/v1/search", json={"query": "宜昌市疗休养基地", "folder": "2031/01"}, headers=auth, timeout=60)
    assert everything and nothing.status_code == 200 and nothing.json()["data"] == []
    bad = httpx.post(f"{server}/v1/search", json={"query": "宜昌", "since": "last May"}, headers=auth, timeout=60)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "since"
    completion = client.chat.completions.create(model="zhiwen", messages=[{"role": "user", "content": "宜昌市在全省建立了多少家疗休养基地？"}],
                                                extra_body={"since": "2030-01-01"})
    assert completion.model_extra["refused"] is True  # no article of the seeds states a date that late
