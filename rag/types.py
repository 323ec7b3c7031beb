"""Plain data passed between pipeline stages.

Offsets (`start`, `end`) are always character offsets into the decoded text of
the original seed file, so a citation can point a reader at the exact place.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """A seed file's text as a loader extracted it; `pages[i]` is where page i+1 begins (paged formats only)."""

    text: str
    pages: tuple[int, ...] = ()
    date: str = ""  # YYYY-MM-DD the file's own metadata gives (a web page's, a PDF's or Word file's creation date)


@dataclass(frozen=True)
class Paragraph:
    """A cleaned paragraph; `offsets[i]` is the file offset of `text[i]`."""

    text: str
    offsets: tuple[int, ...]

    @property
    def start(self) -> int:
        return self.offsets[0]

    @property
    def end(self) -> int:
        return self.offsets[-1] + 1


@dataclass(frozen=True)
class Article:
    source: str
    title: str
    paragraphs: tuple[Paragraph, ...]

    @property
    def start(self) -> int:
        return self.paragraphs[0].start

    @property
    def end(self) -> int:
        return self.paragraphs[-1].end

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.paragraphs)


@dataclass(frozen=True)
class Chunk:
    """The unit that is indexed. `search_text` is simplified Chinese for matching."""

    id: int
    source: str
    title: str
    text: str
    search_text: str
    start: int
    end: int
    article: int = 0  # index of the article within its source file
    sentences: tuple[tuple[int, int], ...] = ()  # sentence spans in `text`, each with a vector in the index
    page: int = 0  # 1-based page where the chunk starts, 0 for formats without pages


@dataclass
class Passage:
    """A retrieved chunk with its fused score, as returned by `Assistant.retrieve`."""

    text: str
    source: str
    title: str
    score: float
    start: int
    end: int
    chunk_id: int = -1
    article: int = 0
    # In a citation: the exact fragment the answer rests on, as it stands in `text`, and its file offsets.
    quote: str = ""
    quote_start: int = -1
    quote_end: int = -1
    page: int = 0  # 1-based page of the quote (or of the passage's start) in a PDF; 0 for other formats

    @property
    def location(self) -> str:
        """Where to look: `2023/05/page3.pdf p. 3, characters 120-480`."""
        page = f" p. {self.page}" if self.page else ""
        return f"{self.source}{page}, characters {self.start}-{self.end}"

    def __str__(self) -> str:
        return f"[{self.location}] {self.title}: {self.text}"


@dataclass(frozen=True)
class Question:
    """One question as the answering stages see it: as asked, as searched (a follow-up made
    standalone, one part of a multi-part question), and the language its answer is written in."""

    asked: str
    query: str
    lang: str  # zh-Hans, zh-Hant or en


# What a user is told when a question is refused, in the language of the question.
REFUSAL_TEXT = {
    "zh-Hans": "文章中没有找到相关信息。",
    "zh-Hant": "文章中沒有找到相關資訊。",
    "en": "Not found in the articles.",
}
REFUSAL_KINDS = {
    "unanswered": "no retrieved sentence answers it, by the judge (decided before the model is asked)",
    "reader": "the model found no answer, or every answer it gave failed the reader's checks",
    "leak": "the model's answer repeats its instructions",
    "unsupported": "the answer rests on facts found in no retrieved passage",
    "parts": "no part of a multi-part question was answered",
}


@dataclass(frozen=True)
class Refusal:
    """Why a question was not answered: the stage that decided (a key of REFUSAL_KINDS, for programs)
    and a line saying what it found (for people)."""

    kind: str
    detail: str

    def __post_init__(self) -> None:
        if self.kind not in REFUSAL_KINDS:
            raise ValueError(f"unknown refusal kind {self.kind!r}; one of {', '.join(REFUSAL_KINDS)}")


@dataclass
class Trace:
    """What happened to one question on its way to an answer: for the sources panel, the journal,
    evaluation and the benches (the answer itself is in `Answer`)."""

    lang: str = ""  # the language the answer is written in: zh-Hans, zh-Hant or en
    query: str = ""  # the question as searched (follow-ups made standalone)
    passages: list[Passage] = field(default_factory=list)  # retrieved, in rank order
    evidence: list = field(default_factory=list)  # evidence.Evidence: the sentences the model was shown
    judged: float = 0.0  # the judge's best probability over the candidate sentences
    retried: bool = False  # the reader asked the model a second time
    rejected: list[str] = field(default_factory=list)  # why the reader refused each answer it did not keep
    quote: str = ""  # the sentence the model quoted
    quote_judged: float | None = None  # the judge's probability for the sentence the answer rests on
    quote_context: str = ""  # that sentence with the neighbours it was read with
    refusal: Refusal | None = None
    ttft: float = 0.0  # seconds to the first text shown
    seconds: float = 0.0  # seconds to the final answer
    parts: list["Trace"] = field(default_factory=list)  # a multi-part question: one per part

    @property
    def why(self) -> str:
        """The refusal's detail, or for an answer kept after a retry what the reader refused before it."""
        return self.refusal.detail if self.refusal else "; ".join(self.rejected)


@dataclass
class Answer:
    text: str
    citations: list[Passage] = field(default_factory=list)
    refused: bool = False
    unverified: list[str] = field(default_factory=list)  # numbers in the text found in no passage
    trace: Trace = field(default_factory=Trace)

    @classmethod
    def refusing(cls, trace: Trace) -> "Answer":
        """The refusal users see, in the trace's language (`trace.refusal` says which stage decided)."""
        return cls(REFUSAL_TEXT[trace.lang], [], refused=True, trace=trace)

    @property
    def meta(self) -> dict:
        """The trace as a plain dict (with `refusal_reason`, the refusal's detail), as answers carried it before `Trace`."""
        meta = {name: getattr(self.trace, name) for name in self.trace.__dataclass_fields__ if name not in ("refusal", "parts")}
        meta["parts"] = [vars(part) for part in self.trace.parts]
        if self.trace.refusal is not None:
            meta["refusal_reason"] = self.trace.refusal.detail
        return meta


class ScopeError(ValueError):
    """A scope's day is not written YYYY-MM-DD; `field` says which."""

    def __init__(self, field: str, value: str):
        super().__init__(f"`{field}` is a day written YYYY-MM-DD, not {value!r}")
        self.field = field


@dataclass(frozen=True)
class Scope:
    """Which articles a question is asked of: a folder of the seeds (and its subfolders) and a date
    range (YYYY-MM-DD, either end open) of the articles' datelines. Empty: the whole archive."""

    folder: str = ""
    since: str = ""
    until: str = ""

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            day = getattr(self, name)
            if day and not (len(day) == 10 and day[4] == day[7] == "-" and (day[:4] + day[5:7] + day[8:]).isdigit()):
                raise ScopeError(name, day)

    def __bool__(self) -> bool:
        return bool(self.folder.strip("/ ") or self.since or self.until)
