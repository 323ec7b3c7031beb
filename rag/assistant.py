"""The one entry point: `Assistant` ties index, retrieval and answers together."""
from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
import unicodedata
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from .answering.backends import extractive, load_generator
from .answering.cite import file_span, verify
from .answering.evidence import best_judged, choose, rank, unanswered
from .answering.history import standalone_question
from .answering.parts import combine, split_question
from .answering.reader import Generator, Reader, Support, Verdicts
from .clean import clean
from .config import PER_QUESTION, Config, load_config
from .embed import Embedder, beside_questions, load_embedder
from .index import BuildReport, build, file_stats, seeds_changed
from .indexer import Indexer, IndexingStatus
from .judge import Judge, load_judge
from .loaders import load, page_at
from .retrieve import Retriever
from .segment import segment
from .stores import CorruptIndexError, IndexMissingError, check_compatible, open_store
from .text.script import language_of
from .types import Answer, Article, Document, Passage, Question, Refusal, Scope, Trace

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=64)
def _document(path: Path, mtime_ns: int, size: int) -> Document:
    """A seed file's text, per file version: quotes become file offsets and pages, articles are shown whole."""
    return load(path)


@functools.lru_cache(maxsize=64)
def _articles(path: Path, mtime_ns: int, size: int) -> list[Article]:
    """Cached per file version: the chat shows whole articles beside every answer."""
    return segment(path.name, clean(_document(path, mtime_ns, size).text))


class QuestionError(ValueError):
    """The question cannot be searched as given; the message says why."""


class Assistant:
    """Question answering over a folder of news articles.

    >>> bot = Assistant()                      # seeds/ and index/, index built if missing
    >>> bot.retrieve("宜昌市建立了多少家疗休养基地？", k=3)
    """

    def __init__(self, seeds_dir: str | Path | None = None, index_dir: str | Path | None = None, *,
                 embedder: Embedder | None = None, retriever: Retriever | None = None, generator: Generator | None = None,
                 **config: object):
        """Settings by keyword (`rag.config`). Its parts are loaded at first use, or given: an embedder,
        an opened index (`retriever`) or an answer model one process already holds, shared."""
        self.config: Config = load_config(seeds_dir=seeds_dir, index_dir=index_dir, **config)
        self._embedder = embedder
        self._retriever = retriever
        self._generator = generator
        self._generator_loaded = generator is not None
        self._other_generators: dict[tuple, Generator | None] = {}  # answer models a question chose (`ask_stream`'s settings)
        self._lock = threading.RLock()
        self._build_lock = threading.RLock()  # one build at a time; taken before _lock, never inside it
        self._stats: dict[str, tuple[int, ...]] | None = None  # the seeds folder as last indexed
        self._building: dict[str, tuple[int, ...]] | None = None  # ... and as the build running now found it
        self._indexer = Indexer(self._update_beside_questions)

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.config)
            return self._embedder

    def index(self, rebuild: bool = False, progress: bool = True, watch=None, again: Collection[str] = (),
              compact: bool = False) -> BuildReport:
        """Bring index/ up to date with seeds/ (only new or changed files are embedded, and the
        files named in `again`; `compact` then merges the store's segments into one). Questions
        meanwhile are answered from the index as it was; the new one replaces it when whole."""
        with self._build_lock:
            stats = self._building = file_stats(self.config.seeds_dir)
            embedder = self.embedder
            try:
                index, report = build(self.config.seeds_dir, self.config.index_dir, embedder, self.config, rebuild, progress, watch, again,
                                      compact)
            finally:
                self._building = None
            for problem in report.problems.values():
                log.warning("not indexed: %s", problem)
            with self._lock:
                self._stats = stats
                if self._retriever is None or report.touched or rebuild or compact:
                    self._retriever = Retriever(index, embedder, self.config)
            return report

    def _update_beside_questions(self, watch) -> BuildReport:
        """The background update: questions keep a core while it embeds."""
        with beside_questions(self.embedder):
            return self.index(progress=False, watch=watch)

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is not None:
                return self._retriever
        with self._build_lock:  # opening may build the index
            if self._retriever is None:
                retriever = self._open()
                with self._lock:
                    self._retriever = retriever
            return self._retriever

    @property
    def indexing(self) -> IndexingStatus:
        """Whether an update runs in the background, how far it is, and how the last one went."""
        return self._indexer.status()

    def _open(self) -> Retriever:
        try:
            index = open_store(self.config)
        except IndexMissingError:
            log.info("no index in %s yet; building it from %s", self.config.index_dir, self.config.seeds_dir)
            self.index()
            return self._retriever  # type: ignore[return-value]
        except CorruptIndexError as exc:
            log.warning("%s; rebuilding it now", exc)
            self.index(rebuild=True)
            return self._retriever  # type: ignore[return-value]
        check_compatible(index.manifest, self.embedder.name, self.embedder.dim, self.config)
        stats = file_stats(self.config.seeds_dir)
        if seeds_changed(index, self.config.seeds_dir):
            log.info("%s changed since the index was built; updating it", self.config.seeds_dir)
            self.index()
            return self._retriever  # type: ignore[return-value]
        self._stats = stats
        return Retriever(index, self.embedder, self.config)

    def sync(self, wait: bool = False) -> BuildReport | None:
        """Index files added, changed or removed in the seeds folder since the last look.

        A stat scan (size, mtime, inode and ctime of each file) costs milliseconds, so it runs before every
        question; a difference starts an incremental update, in the background unless
        `background_indexing` is off or `wait` is asked. Returns the update's report when it
        waited for one, else None."""
        if self._retriever is None:
            self.retriever  # opening the index checks the folder by content
            return None
        if file_stats(self.config.seeds_dir) in (self._stats, self._building):  # nothing new, or being indexed now
            return self._indexer.wait() if wait and self._indexer.running else None
        log.info("%s changed; updating the index", self.config.seeds_dir)
        if not self.config.background_indexing:
            return self.index(progress=False)
        self._indexer.request()
        return self._indexer.wait() if wait else None

    def retrieve(self, question: str, k: int | None = None, fusion: str | None = None,
                 scope: Scope | None = None) -> list[Passage]:
        """The k passages that best support an answer, best first; with a scope, from its folder
        and date range only."""
        query = self.check_question(question)
        k = k or self.config.k
        if k < 1:
            raise QuestionError(f"k must be at least 1, got {k}")
        if self.config.sync_seeds:
            self.sync()
        retriever = self.retriever
        with self._lock:
            return retriever.search(query, k, fusion, scope)

    def check_question(self, question: str) -> str:
        if not isinstance(question, str):
            raise QuestionError(f"the question must be text, got {type(question).__name__}")
        text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in question).strip()
        if not text:
            raise QuestionError("the question is empty; type a question about the articles")
        if len(text) > self.config.max_question_chars:
            raise QuestionError(
                f"the question is {len(text)} characters long; the limit is {self.config.max_question_chars}. "
                "Ask about one fact at a time."
            )
        return text

    # ---- answers -------------------------------------------------------------

    def configure(self, **overrides: object) -> None:
        """Change settings in place (e.g. the answer model from the app); the model reloads if it changed."""
        new = self.config.with_overrides(**overrides)
        with self._lock:
            if _answer_model(new) != _answer_model(self.config):
                self._generator, self._generator_loaded = None, False
            self.config = new

    def article_text(self, source: str, article: int) -> tuple[str, str]:
        """Title and cleaned text of one article of a seed file, for showing it whole.
        Raises FileNotFoundError when the file has left the seeds folder since it was indexed."""
        path = self.config.seeds_dir / source
        stat = path.stat()
        articles = _articles(path, stat.st_mtime_ns, stat.st_size)
        a = articles[article] if 0 <= article < len(articles) else articles[0]
        return a.title, a.text

    def warm(self) -> None:
        """Load the index, the judge and the answer model now, so the first question is not the slow one."""
        self.retriever
        self.judge.warm()
        self.generator

    @property
    def generator(self) -> Generator | None:
        with self._lock:
            if not self._generator_loaded:
                self._generator = load_generator(self.config)
                self._generator_loaded = True
            return self._generator

    def _generator_for(self, config: Config) -> Generator | None:
        """The answer model a question's settings name: the configured one, or another kept loaded
        beside it for the next question that chooses it."""
        wanted = _answer_model(config)
        if wanted == _answer_model(self.config):
            return self.generator
        with self._lock:
            if wanted not in self._other_generators:
                self._other_generators[wanted] = load_generator(config)
            return self._other_generators[wanted]

    def ask(self, question: str, history: Sequence | None = None, scope: Scope | None = None, **settings: object) -> Answer:
        """A short answer with verified citations, or a refusal when the articles do not say."""
        answer = None
        for item in self.ask_stream(question, history, scope, **settings):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def ask_stream(self, question: str, history: Sequence | None = None, scope: Scope | None = None,
                   **settings: object) -> Iterator[str | Answer]:
        """Yield text pieces as they are generated, then the final `Answer`.

        A multi-part question (济南和淄博分别…) is answered part by part, each with its own
        evidence and checks, and the parts are joined into one answer. `settings` (Config fields,
        e.g. `llm_model="qwen2.5-coder-0.5b", k=8`) hold for this question only: users of one
        Assistant who chose different models do not change each other's.
        """
        started = time.perf_counter()
        config = self.config.with_overrides(**settings) if settings else self.config  # unknown names raise here
        shared = sorted(set(settings) - PER_QUESTION)
        if shared:
            raise TypeError(f"{', '.join(shared)}: not a setting of one question; give it to Assistant(...) instead")
        asked = self.check_question(question)
        if self.config.sync_seeds:
            self.sync()
        lang = language_of(asked)
        parts = split_question(asked)
        if len(parts) == 1:
            yield from self._answer(Question(asked, standalone_question(asked, history), lang), started, scope, config)
            return
        answers = []
        for number, part in enumerate(parts):
            yield ("\n" if number else "") + f"{part.subject}："
            for item in self._answer(Question(part.question, standalone_question(part.question, history), lang), started, scope, config):
                if isinstance(item, Answer):
                    answers.append(item)
                else:
                    yield item
        yield combine(parts, answers, lang, time.perf_counter() - started)

    def _answer(self, question: Question, started: float, scope: Scope | None, config: Config) -> Iterator[str | Answer]:
        """One question through retrieval, evidence, the reader and the citation check."""
        asked, query, lang = question.asked, question.query, question.lang
        retriever = self.retriever
        with self._lock:
            passages = retriever.search(query, config.k, scope=scope)
        judge = _judge(config)
        ranked = rank(query, passages, retriever.index, self.embedder, config, judge)
        selection = choose(query, ranked, config)
        evidence = selection.shown
        trace = Trace(lang, query, passages, evidence, judged=best_judged(ranked))
        refusal = unanswered(query, passages, ranked, evidence, config)
        if refusal:
            yield self._refusal(trace, Refusal("unanswered", refusal), started)
            return
        generator = self._generator_for(config)
        if generator is None:
            raw = extractive(query, evidence)
            trace.ttft = time.perf_counter() - started
            yield raw
            support = None
        else:
            verdicts = Verdicts(judge, query, ranked, passages, config.judge_threshold)
            reader = Reader(generator, config, verdicts)
            reading = yield from self._timed(reader.read(question, selection, passages), trace, started)
            trace.retried, trace.rejected, trace.quote = reading.retried, reading.rejected, reading.quote
            if reading.refusal:
                yield self._refusal(trace, reading.refusal, started)
                return
            if reading.retried:  # a retried answer is shown only now, after its checks
                trace.ttft = trace.ttft or time.perf_counter() - started
                yield reading.answer
            raw, support = reading.answer, reading.support
            trace.quote_judged, trace.quote_context = support.judged, support.context
        cited = verify(raw, passages, asked, lang, support.passage if support else None)
        if cited.unsupported:
            yield self._refusal(trace, Refusal("unsupported", f"answer rests on facts found in no passage: {cited.unverified}"), started)
            return
        citations = [self._with_quote(p, support, passages) for p in cited.citations] if support else cited.citations
        trace.seconds = time.perf_counter() - started
        yield Answer(cited.text, citations, refused=False, unverified=cited.unverified, trace=trace)

    @property
    def judge(self) -> Judge:
        """The trained judge, shared by the process, its network loaded at the first question."""
        return _judge(self.config)

    @staticmethod
    def _timed(pieces: Iterator[str], trace: Trace, started: float):
        """Pass the reader's pieces on, noting when the first one came; returns the reader's result."""
        while True:
            try:
                piece = next(pieces)
            except StopIteration as done:
                return done.value
            trace.ttft = trace.ttft or time.perf_counter() - started
            yield piece

    def _with_quote(self, passage: Passage, support: Support, passages: list[Passage]) -> Passage:
        """The cited passage that holds the quote carries the quoted span, in passage and in file offsets."""
        if passage.chunk_id != passages[support.passage].chunk_id:
            return passage
        quote = passage.text[support.start : support.end]
        path = self.config.seeds_dir / passage.source
        page = passage.page
        try:
            stat = path.stat()
            document = _document(path, stat.st_mtime_ns, stat.st_size)
            start, end = file_span(document.text, passage, support.start, support.end)
            page = page_at(document, start) or page
        except (OSError, ValueError):
            start, end = -1, -1  # the file changed or went away since it was indexed
        return dataclasses.replace(passage, quote=quote, quote_start=start, quote_end=end, page=page)

    @staticmethod
    def _refusal(trace: Trace, refusal: Refusal, started: float) -> Answer:
        trace.refusal = refusal
        trace.seconds = time.perf_counter() - started
        trace.ttft = trace.ttft or trace.seconds
        return Answer.refusing(trace)


def _answer_model(config: Config) -> tuple:
    """The settings that make a different answer model (a change means loading another)."""
    return config.llm_backend, config.llm_model, config.llm_url, config.llm_api_model, config.n_ctx, config.flash_attn


def _judge(config: Config) -> Judge:
    """The process's judge for these settings (`load_judge` keeps one per embedding model and reading)."""
    return load_judge(config.embed_model_path, config.judge_max_tokens, config.judge_context_chars, config.judge_dir)
