"""Cut articles into overlapping, sentence-aligned chunks for indexing."""
from __future__ import annotations

from dataclasses import dataclass

from .config import Indexing
from .text.script import to_search_form
from .text.sentences import split_sentences
from .types import Article, Chunk

@dataclass(frozen=True)
class _Sentence:
    text: str
    start: int
    end: int
    paragraph: int


def sentences(article: Article) -> list[_Sentence]:
    out = []
    for number, p in enumerate(article.paragraphs):
        for a, b in split_sentences(p.text):
            out.append(_Sentence(p.text[a:b], p.offsets[a], p.offsets[b - 1] + 1, number))
    return out


def _split_long(s: _Sentence, limit: int) -> list[_Sentence]:
    """Break a sentence longer than `limit` at commas, or hard at the limit.

    Iterative: a file can hold a single line of hundreds of thousands of characters.
    """
    pieces: list[_Sentence] = []
    while len(s.text) > limit:
        cut = max(s.text.rfind(c, 0, limit) for c in "，,、：:")
        cut = cut + 1 if cut > limit // 3 else limit
        # Offsets inside one sentence are contiguous unless cleaning deleted text;
        # an approximate split point is fine for the tail's start.
        pieces.append(_Sentence(s.text[:cut], s.start, s.start + cut, s.paragraph))
        s = _Sentence(s.text[cut:], s.start + cut, s.end, s.paragraph)
    return [*pieces, s]


def chunk_article(article: Article, config: Indexing, article_number: int = 0, first_id: int = 0) -> list[Chunk]:
    units = [piece for s in sentences(article) for piece in _split_long(s, config.chunk_max)]
    groups: list[list[_Sentence]] = []
    current: list[_Sentence] = []
    for unit in units:
        if current and _length(current + [unit]) > config.chunk_max:
            groups.append(current)
            overlap = current[-config.chunk_overlap_sentences:] if config.chunk_overlap_sentences else []
            current = [s for s in overlap if len(s.text) < config.chunk_max // 2]
        current.append(unit)
    if current:
        if groups and _length(current) < config.chunk_min:
            tail = [s for s in current if s not in groups[-1]]
            groups[-1] = groups[-1] + tail
        else:
            groups.append(current)
    return [_make_chunk(article, group, article_number, first_id + i) for i, group in enumerate(groups)]


def _length(group: list[_Sentence]) -> int:
    return sum(len(s.text) for s in group)


def _make_chunk(article: Article, group: list[_Sentence], article_number: int, chunk_id: int) -> Chunk:
    parts: list[str] = []
    for prev, s in zip([None, *group], group):
        if prev is not None and prev.paragraph != s.paragraph:
            parts.append("\n")
        parts.append(s.text)
    text = "".join(parts)
    return Chunk(
        id=chunk_id,
        source=article.source,
        title=article.title,
        text=text,
        search_text=to_search_form(f"{article.title}\n{text}"),
        start=group[0].start,
        end=group[-1].end,
        article=article_number,
        sentences=tuple(split_sentences(text)),
    )


def sentence_contexts(chunk: Chunk) -> list[str]:
    """What each sentence is embedded as: in search form, after its article title for context."""
    title = to_search_form(chunk.title)
    return [f"{title}：{to_search_form(chunk.text[a:b])}" for a, b in chunk.sentences]


def sentence_spans(chunk: Chunk) -> list[tuple[int, int]]:
    """Where each sentence lies in `search_text` (the title, a newline, the chunk in search form)."""
    head = f"{chunk.title}\n"
    return [(len(to_search_form(head + chunk.text[:a])), len(to_search_form(head + chunk.text[:b]))) for a, b in chunk.sentences]


def chunk_articles(articles: list[Article], config: Indexing) -> list[Chunk]:
    chunks: list[Chunk] = []
    for number, article in enumerate(articles):
        chunks.extend(chunk_article(article, config, number, len(chunks)))
    return chunks
