"""The HTTP API, driven by the official `openai` client and by plain HTTP against a live `rag serve`."""
from __future__ import annotations

import json
import logging
import shutil

import httpx
import pytest
from conftest import free_port, start_process

KEY = "test-key"


@pytest.fixture(scope="module")
def server(assistant, tmp_path_factory):
    """`python -m rag.server` with the extractive backend and an API key, on a free loopback port."""
    port = free_port()
    base = tmp_path_factory.mktemp("server")
    shutil.copytree(assistant.config.seeds_dir, base / "seeds")
    shutil.copytree(assistant.config.index_dir, base / "index")
    url = f"http://127.0.0.1:{port}"
    proc = start_process(["-m", "rag.server", "--seeds", str(base / "seeds"), "--index", str(base / "index"), "--port", str(port), "--extractive"],
                         f"{url}/healthz", base / "server.log", {"RAG_API_KEY": KEY})
    yield url
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)


def test_openai_client_gets_an_answer_with_citations(client):
    completion = client.chat.completions.create(model="zhiwen", messages=[{"role": "user", "content": "宜昌市在全省建立了多少家疗休养基地？"}])
    text = completion.choices[0].message.content
    extra = completion.model_extra
    assert "15" in text and "[1]" in text and extra["refused"] is False
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
