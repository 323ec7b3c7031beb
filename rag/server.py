"""An HTTP API in OpenAI's shape: `rag serve` (or `python -m rag serve`).

Any OpenAI client, chat front-end or script can ask the archive:

    POST /v1/chat/completions   the answer, streamed over SSE with "stream": true; the text carries
                                [n] markers and the response an extra `citations` list, `refused` flag
                                and `refusal` ({"kind", "detail"}: which stage refused and why)
    GET  /v1/models             the one model this server answers with
    POST /v1/search             {"query": "...", "k": 5} -> passages with scores; both routes take
                                "folder", "since", "until" (YYYY-MM-DD) to ask part of the archive
    POST /v1/feedback           {"id": "<completion id>", "rating": "up" | "down", "note": "..."}: a
                                user's verdict on an answer, kept with it (`rag feedback export`)
    GET  /healthz               liveness, index size, and the background indexing's progress

Errors have OpenAI's body, `{"error": {"message", "type", "param", "code"}}`. With an API key
(`--api-key` or RAG_API_KEY) every route but /healthz needs `Authorization: Bearer <key>`.
One process holds one in-process model; concurrent questions queue on it, while a remote
model (`llm_url`) answers several at once.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hmac
import ipaddress
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .answering.backends import Stopped, stoppable
from .answering.history import message_text
from .assistant import Assistant, QuestionError
from .desk import JournalError, open_journal
from .desk.journal import answer_model, generation
from .types import Answer, Passage, Scope, ScopeError

log = logging.getLogger(__name__)

MODEL_ID = "zhiwen"
MAX_BODY = 1_000_000  # bytes of one request


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.body = status, {"error": {"message": message, "type": kind, "param": param, "code": code}}


def citation(number: int, p: Passage) -> dict:
    """What a client needs to show a source: file, title, offsets, page, the quoted span."""
    fields = ("source", "title", "text", "start", "end", "page", "article", "quote", "quote_start", "quote_end", "score")
    return {"number": number, **{f: getattr(p, f) for f in fields}}


def answer_fields(answer: Answer) -> dict:
    """The extra fields of a completion: citations in [n] order, whether the archive had no answer,
    and why (the stage that refused and what it found)."""
    refusal = answer.trace.refusal
    return {"citations": [citation(n, p) for n, p in enumerate(answer.citations, 1)], "refused": answer.refused,
            "refusal": {"kind": refusal.kind, "detail": refusal.detail} if refusal else None}


def create_app(assistant: Assistant, api_key: str | None = None):
    """The ASGI app over one Assistant."""
    # No /docs or /redoc: Swagger UI loads its scripts from a CDN, which an offline machine cannot reach;
    # /openapi.json describes the API.
    app = FastAPI(title="zhiwen", summary="Questions over a Chinese news archive, answered with citations", docs_url=None, redoc_url=None)
    # The in-process model answers one question at a time (llama.cpp is not thread-safe); others wait here.
    gate = threading.Lock() if assistant.config.llm_backend == "llama" else None

    def answering():
        return gate if gate is not None else contextlib.nullcontext()

    def ask(question: str, history: list[dict], scope: Scope) -> Answer:
        with answering():
            return assistant.ask(question, history, scope)

    # Every completion is kept with its id, so a client can say later whether it was right.
    journal, journal_off = open_journal(assistant.config.desk_file)

    def keep(completion_id: str, question: str, answer: Answer) -> None:
        if journal is None:
            return
        try:
            journal.start("api", question, id=completion_id)
            journal.record(completion_id, question, answer, answer_model(assistant.config),
                           generation(assistant.retriever.index.manifest), id=completion_id)
        except JournalError as exc:  # the answer is given all the same
            log.warning("answer not kept: %s", exc)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        """An unknown route or method, in OpenAI's error shape like every other error."""
        what = {404: "Invalid URL", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
        error = ApiError(exc.status_code, f"{what} ({request.method} {request.url.path})")
        return JSONResponse(error.body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    allowed = {h.strip().lower() for h in assistant.config.allowed_hosts.split(",") if h.strip()}

    @app.middleware("http")
    async def authorise(request: Request, call_next):
        if not api_key and not host_allowed(request.headers.get("host", ""), allowed):
            # Without a key, a web page the user visits could reach this server through a DNS name
            # that points at it (DNS rebinding) and read the archive; such names are refused.
            error = ApiError(403, f"Host {request.headers.get('host', '')!r} is not an address of this server: without an API key it "
                                  "answers only to IP addresses and localhost; add the name to allowed_hosts (RAG_ALLOWED_HOSTS) "
                                  "or set an API key", "permission_error", code="host_not_allowed")
            return JSONResponse(error.body, status_code=403)
        if api_key and request.url.path != "/healthz":
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                error = ApiError(401, "missing or wrong API key: send `Authorization: Bearer <key>`", "authentication_error", code="invalid_api_key")
                return JSONResponse(error.body, status_code=401)
        return await call_next(request)

    async def body_of(request: Request) -> dict:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):
            # A page in a browser may POST text/plain to any address without asking; JSON it may not.
            raise ApiError(415, f"the body must be JSON, sent as Content-Type: application/json (got {kind or 'none'!r})")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise ApiError(413, f"the request is {int(declared)} bytes; the limit is {MAX_BODY}")
        raw = bytearray()
        async for piece in request.stream():  # refused as it streams in, not after holding all of it
            raw += piece
            if len(raw) > MAX_BODY:
                raise ApiError(413, f"the request is over {MAX_BODY} bytes, the limit")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the body is not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    @app.get("/healthz")
    def healthz() -> dict:
        index = assistant.retriever.index
        return {"status": "ok", "chunks": len(index), "files": len(index.manifest.files),
                "indexing": dataclasses.asdict(assistant.indexing)}

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [model_card()]}

    def model_card() -> dict:
        c = assistant.config
        return {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "zhiwen", "answer_model": answer_model(c)}

    @app.post("/v1/search")
    async def search(request: Request) -> dict:
        body = await body_of(request)
        query, k = body.get("query"), body.get("k", assistant.config.k)
        if not isinstance(query, str):
            raise ApiError(400, "`query` must be a string", param="query")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
            raise ApiError(400, "`k` must be an integer from 1 to 100", param="k")
        scope = scope_of(body)
        try:
            passages = await run_in_threadpool(assistant.retrieve, query, k, None, scope)
        except QuestionError as exc:
            raise ApiError(400, str(exc), param="query") from None
        return {"object": "list", "data": [citation(n, p) for n, p in enumerate(passages, 1)]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await body_of(request)
        model = body.get("model") or MODEL_ID
        if model != MODEL_ID:
            raise ApiError(404, f"the model `{model}` does not exist; this server answers as `{MODEL_ID}` (GET /v1/models)", param="model", code="model_not_found")
        question, history = question_of(body.get("messages"))
        try:
            question = assistant.check_question(question)
        except QuestionError as exc:
            raise ApiError(400, str(exc), param="messages") from None
        scope = scope_of(body)
        completion = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": MODEL_ID}
        if body.get("stream"):
            return StreamingResponse(stream(request, question, history, scope, completion), media_type="text/event-stream")
        answer = await run_in_threadpool(ask, question, history, scope)
        await run_in_threadpool(keep, completion["id"], question, answer)
        return {**completion, "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}],
                "usage": usage(question, answer.text), **answer_fields(answer)}

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> dict:
        body = await body_of(request)
        turn, rating, note = body.get("id"), body.get("rating"), body.get("note")
        if not isinstance(turn, str) or not turn:
            raise ApiError(400, "`id` must be the id of a completion this server gave", param="id")
        if rating not in ("up", "down"):
            raise ApiError(400, "`rating` must be \"up\" (the answer is right) or \"down\" (it is wrong)", param="rating")
        if note is not None and not isinstance(note, str):
            raise ApiError(400, "`note` must be a string", param="note")
        if journal is None:
            raise ApiError(503, f"feedback is off: {journal_off}", "server_error")
        try:
            found = await run_in_threadpool(journal.rate, turn, rating == "up", note)
        except JournalError as exc:
            raise ApiError(503, f"feedback not kept: {exc}", "server_error") from None
        if not found:
            raise ApiError(404, f"no answer with id `{turn}` is kept here", param="id", code="not_found")
        return {"id": turn, "object": "feedback", "rating": rating, "note": note or ""}

    async def stream(request: Request, question: str, history: list[dict], scope: Scope, completion: dict) -> AsyncIterator[str]:
        """Text pieces as deltas; the last chunk carries the checked answer (which replaces what
        streamed when the checks changed it), its citations and the refusal flag. A client that
        leaves stops its answer at the next token and frees the model for the next question."""
        def event(delta: dict, finish: str | None = None, **extra) -> str:
            chunk = {**completion, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

        items: queue.Queue = queue.Queue()
        left = threading.Event()  # the client went away

        def produce() -> None:
            """Answers in its own thread, so the event loop never waits on the model."""
            with answering(), stoppable(left):
                try:
                    if left.is_set():  # it left while the question waited for the model
                        raise Stopped("left while waiting")
                    for item in assistant.ask_stream(question, history, scope):
                        items.put(item)
                        if isinstance(item, Answer):
                            keep(completion["id"], question, item)
                except Stopped:
                    log.info("stream stopped: the client left")
                except Exception as exc:
                    log.exception("answering failed")
                    items.put(exc)
                finally:
                    items.put(None)

        threading.Thread(target=produce, daemon=True).start()
        try:
            yield event({"role": "assistant", "content": ""})
            while True:
                try:
                    item = await run_in_threadpool(items.get, True, 0.5)
                except queue.Empty:  # nothing new: is anybody still reading?
                    if await request.is_disconnected():
                        return
                    continue
                if item is None:
                    break
                if isinstance(item, Exception):  # the stream has begun: the error travels as an event
                    yield f"data: {json.dumps(ApiError(500, f'answering failed: {item}', 'server_error').body)}\n\n"
                elif isinstance(item, Answer):
                    yield event({}, "stop", answer=item.text, **answer_fields(item))
                else:
                    yield event({"content": item})
            yield "data: [DONE]\n\n"
        finally:  # also when the client went away
            left.set()

    return app


def question_of(messages: object) -> tuple[str, list[dict]]:
    """The last user message is the question; the messages before it are the history."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "`messages` must be a non-empty list of {role, content}", param="messages")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise ApiError(400, "each message must be an object with a `role` and a `content`", param="messages")
    last = messages[-1]
    if last["role"] != "user":
        raise ApiError(400, "the last message must be the user's question", param="messages")
    history = [{"role": m["role"], "content": message_text(m.get("content"))} for m in messages[:-1] if m["role"] in ("user", "assistant")]
    return message_text(last.get("content")), history


def scope_of(body: dict) -> Scope:
    """The part of the archive a request asks: `folder`, `since`, `until` (YYYY-MM-DD)."""
    values = {}
    for field in ("folder", "since", "until"):
        value = body.get(field, "") or ""
        if not isinstance(value, str):
            raise ApiError(400, f"`{field}` must be a string", param=field)
        values[field] = value
    try:
        return Scope(**values)
    except ScopeError as exc:
        raise ApiError(400, str(exc), param=exc.field) from None


def usage(question: str, text: str) -> dict:
    """Characters, not tokens: the answer model may be remote, and its tokenizer is not ours."""
    return {"prompt_tokens": len(question), "completion_tokens": len(text), "total_tokens": len(question) + len(text)}


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def host_allowed(header: str, allowed: set[str]) -> bool:
    """An IP address (a DNS rebinding attack needs a name), localhost, or a name on the allow-list."""
    name = header.strip().lower()
    if name.startswith("["):  # an IPv6 address, with or without a port: [::1]:8000
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:  # name:port
        name = name.split(":", 1)[0]
    if name in allowed or name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def serve(assistant: Assistant, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None) -> None:
    import uvicorn

    if not is_loopback(host) and not api_key:
        log.warning("serving on %s without an API key: anyone who can reach this port can read the archive; "
                    "set --api-key or RAG_API_KEY", host)
    assistant.warm()
    # A client that walked away from a stream must not keep the server from stopping.
    uvicorn.run(create_app(assistant, api_key), host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
