"""Split one cleaned newspaper page into articles (headline + body).

A page mixes headline blocks, bylines, body paragraphs, photo captions and
section subheads. A run of headline-like lines starts a new article unless it is
a lone line followed by body text (a subhead inside the current article); a
dateline such as "本报讯" or "某某报道" starts one even without a headline.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from .types import Article, Paragraph

_DATELINE = re.compile(r"^((本报讯|本報訊)\s*([(（][^)）]{0,40}[)）])?|[^，,。；！？!?]{2,40}?(报道|報道)(?!的))")
_BYLINE = re.compile(r"^(本报|本報)?(记者|記者|通讯员|通訊員)|摄$|攝$|^(新华社|新華社|视觉中国|視覺中國)")
_ENDS_SENTENCE = re.compile(r"[。；;！!…]$|[。；;]")
_TITLE_CHARS = 40


def is_headline(text: str) -> bool:
    return len(text) <= 45 and not _ENDS_SENTENCE.search(text) and not _BYLINE.search(text)


def is_byline(text: str) -> bool:
    return len(text) <= 40 and bool(_BYLINE.search(text)) and not _ENDS_SENTENCE.search(text)


def starts_story(text: str) -> bool:
    return bool(_DATELINE.match(text)) or is_byline(text)


def segment(source: str, paragraphs: list[Paragraph]) -> list[Article]:
    articles: list[Article] = []
    headings: list[Paragraph] = []
    body: list[Paragraph] = []

    def close() -> None:
        if headings or body:
            articles.append(_article(source, headings, body))

    for run, following in _runs(paragraphs):
        if is_headline(run[0].text):
            is_subhead = body and len(run) == 1 and following is not None and not starts_story(following.text)
            if is_subhead:
                body.extend(run)
            elif body:
                close()
                headings, body = list(run), []
            else:
                headings.extend(run)
        else:
            p = run[0]
            if _DATELINE.match(p.text):
                # A deck (one paragraph under the headline) may precede the dateline.
                if body and (not headings or len(body) > 1 or _DATELINE.match(body[0].text)):
                    close()
                    headings, body = [], []
            body.append(p)
    close()
    return articles


def _runs(paragraphs: list[Paragraph]) -> Iterator[tuple[list[Paragraph], Paragraph | None]]:
    """Yield runs of consecutive headline lines (or single other lines) with the line after."""
    i = 0
    while i < len(paragraphs):
        j = i + 1
        if is_headline(paragraphs[i].text):
            while j < len(paragraphs) and is_headline(paragraphs[j].text):
                j += 1
        yield paragraphs[i:j], paragraphs[j] if j < len(paragraphs) else None
        i = j


def _article(source: str, headings: list[Paragraph], body: list[Paragraph]) -> Article:
    if headings:
        title = " ".join(h.text for h in headings)
    else:
        first = _DATELINE.sub("", body[0].text, count=1)
        sentence = re.split(r"[。！？!?；;]", first, maxsplit=1)[0]
        title = sentence if len(sentence) <= _TITLE_CHARS else sentence[:_TITLE_CHARS] + "…"
    return Article(source=source, title=title, paragraphs=tuple(headings + body))
