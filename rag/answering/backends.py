"""The answer model's back-ends: a local GGUF, a remote server, or no model (the best sentences).

What they are asked is prompt.py's. All three stream text pieces. The system prompt comes first
and stays the same from question to question, and a retry repeats the first prompt before its own
turn, so llama.cpp keeps its KV cache and evaluates only what is new.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .evidence import Evidence
from .prompt import QUOTE_PROMPT
from ..config import LLM_MODELS, Config
from ..hardware import physical_cores
from ..text.script import to_search_form
from ..text.terms import question_terms

log = logging.getLogger(__name__)

class ModelUnavailableError(RuntimeError):
    pass


class Stopped(Exception):
    """The one waiting for the answer has gone; generation ended at the next token."""


_stop: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("rag_stop", default=None)


@contextmanager
def stoppable(event: threading.Event) -> Iterator[None]:
    """Within this block (in this thread), generation raises `Stopped` at the next token once
    `event` is set: a client that left a stream frees the model instead of holding it to the end."""
    token = _stop.set(event)
    try:
        yield
    finally:
        _stop.reset(token)


def _stop_if_asked() -> None:
    event = _stop.get()
    if event is not None and event.is_set():
        raise Stopped("the answer is no longer wanted")


class LlamaGenerator:
    """In-process llama.cpp; one model, one generation at a time."""

    def __init__(self, path: Path, config: Config):
        if not path.exists():
            raise ModelUnavailableError(f"answer model not found at {path}; run `make setup` (or `rag models install`)")
        from llama_cpp import Llama

        threads = config.threads or physical_cores()
        try:
            self.llm = Llama(
                model_path=str(path), n_ctx=config.n_ctx, n_threads=threads, n_threads_batch=threads,
                n_batch=512, flash_attn=config.flash_attn, verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailableError(
                f"could not load the answer model {path} ({exc}); it may be corrupt: run `rag models install --force`"
            ) from exc
        self.name = f"llama.cpp:{path.name}"
        self.lock = threading.Lock()
        self._format = _chat_formatter(self.llm)
        self.continues = self._format is not None
        self._warm()

    def _warm(self) -> None:
        """Evaluate the fixed system prompt once so every question starts from its cache."""
        for _ in self.stream([{"role": "system", "content": QUOTE_PROMPT}, {"role": "user", "content": "你好"}], 1):
            pass

    def stream(self, messages: list[dict], max_tokens: int, prefix: str = "") -> Iterator[str]:
        """The model's reply; with `prefix`, its continuation of a reply that starts so. The prompt
        is formatted here with the model's own chat template, so a continuation shares every token
        before it with the first call and llama.cpp evaluates only what is new."""
        with self.lock:
            if self._format is None:
                if prefix:
                    raise ValueError("this model has no chat template; it cannot continue a reply")
                for chunk in self.llm.create_chat_completion(messages, stream=True, max_tokens=max_tokens, temperature=0.0):
                    _stop_if_asked()
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
                return
            formatted = self._format(messages=messages)
            for chunk in self.llm.create_completion(formatted.prompt + prefix, stream=True, max_tokens=max_tokens,
                                                    temperature=0.0, stop=formatted.stop):
                _stop_if_asked()
                piece = chunk["choices"][0]["text"]
                if piece:
                    yield piece


def _chat_formatter(llm):
    """The GGUF's own chat template (None when it has none)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    token = llm._model.token_get_text
    return Jinja2ChatFormatter(template=template, eos_token=token(llm.token_eos()),
                               bos_token=token(llm.token_bos()) if llm.token_bos() >= 0 else "")


class OpenAIGenerator:
    """Any OpenAI-compatible chat server (llama.cpp server, vLLM, …) by URL."""

    def __init__(self, url: str, config: Config):
        self.url = url.rstrip("/") + ("/chat/completions" if url.rstrip("/").endswith("/v1") else "/v1/chat/completions")
        self.model = config.llm_api_model
        self.timeout = config.llm_timeout
        self.name = f"openai:{url}"
        self.continues = False

    def stream(self, messages: list[dict], max_tokens: int, prefix: str = "") -> Iterator[str]:
        if prefix:
            raise ValueError("an OpenAI-compatible server cannot be asked to continue a reply")
        body = json.dumps({"model": self.model, "messages": messages, "stream": True, "max_tokens": max_tokens, "temperature": 0}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                for raw in response:
                    _stop_if_asked()
                    line = raw.decode("utf-8").strip()
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    choices = json.loads(line[5:]).get("choices") or [{}]
                    piece = (choices[0].get("delta") or {}).get("content")
                    if piece:
                        yield piece
        except (urllib.error.URLError, OSError) as exc:
            raise ModelUnavailableError(f"the answer server at {self.url} is unreachable ({exc}); check `llm_url`") from exc


def load_generator(config: Config) -> LlamaGenerator | OpenAIGenerator | None:
    """None means extractive mode: answers are the evidence sentences themselves."""
    if config.llm_backend == "extractive":
        return None
    if config.llm_backend == "openai":
        if not config.llm_url:
            raise ModelUnavailableError("llm_backend='openai' needs llm_url, e.g. http://127.0.0.1:8080/v1")
        log.info("answers from the server at %s", config.llm_url)
        return OpenAIGenerator(config.llm_url, config)
    if config.llm_backend == "llama":
        log.info("loading %s", gguf_path(config))
        return LlamaGenerator(gguf_path(config), config)
    raise ValueError(f"unknown llm_backend {config.llm_backend!r}; choose llama, openai or extractive")


def gguf_path(config: Config) -> Path:
    if config.llm_model in LLM_MODELS:
        return config.models_dir / LLM_MODELS[config.llm_model].file
    return Path(config.llm_model).expanduser()


def extractive(question: str, evidence: list[Evidence], limit: int = 2) -> str:
    """The best supporting sentences, question terms in bold, each with its source marker."""
    best = sorted(evidence, key=lambda e: -e.score)[:limit]
    terms = sorted(question_terms(question), key=len, reverse=True)
    return "".join(f"{highlight(e.text, terms)}[{e.passage + 1}]" for e in sorted(best, key=lambda e: (e.passage, e.start)))


def highlight(text: str, terms: list[str]) -> str:
    form = to_search_form(text)
    marks = [False] * len(text)
    if len(form) == len(text):  # search form is aligned character by character
        for term in terms:
            if len(term) < 2:
                continue
            for m in re.finditer(re.escape(term), form):
                marks[m.start() : m.end()] = [True] * (m.end() - m.start())
    out, inside = [], False
    for char, marked in zip(text, marks):
        if marked != inside:
            out.append("**")
            inside = marked
        out.append(char)
    if inside:
        out.append("**")
    return "".join(out)
