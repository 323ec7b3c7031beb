"""Sentences as the index keeps them: chunks, evidence and the judge's training pairs cut text here,
so the span a sentence vector was made from is the span the judge reads."""
from __future__ import annotations

import re

# A sentence ends at 。！？；… (plus any closing quotes); a paragraph end also ends one.
_SENTENCE_END = re.compile(r"[。！？!?；;…]+[”’」』）)]*")

# A quotation's speaker after its closing quote belongs to it: “……。”熊建军说。 is one sentence.
_CLOSING_QUOTE = re.compile(r"[”’」』\"']$")
_ATTRIBUTION = re.compile(
    r"[^。！？!?；;“”「」『』\n]{0,30}?(说|說|表示|介绍|介紹|指出|称|稱|强调|強調|告诉|告訴|坦言|透露|回忆|回憶|感慨|感叹|感嘆|"
    r"补充|補充|解释|解釋|谈到|談到|笑道|问道|問道|答道|写道|寫道|认为|認為|提到)[^。！？!?；;“”「」\n]{0,12}?[。！？!?，,：:]"
)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; line breaks end sentences too."""
    spans = []
    for line in re.finditer(r"[^\n]+", text):
        pos = line.start()
        ends = [m for m in _SENTENCE_END.finditer(text, line.start(), line.end())
                if not (_CLOSING_QUOTE.search(m.group()) and _ATTRIBUTION.match(text, m.end(), line.end()))]
        for m in ends + [None]:
            stop = m.end() if m else line.end()
            if stop > pos and text[pos:stop].strip():
                spans.append((pos, stop))
            pos = stop
    return spans
