"""Fixtures in every supported format, written by the real tools from a seed article's lines.

Used by the tests and by bench/formats.py. The lines are the seed file's raw lines, page-break
splits and glued pinyin included, so the cleaner's repairs are exercised on every format.
"""
from __future__ import annotations

import html
from pathlib import Path

FONT = "STSong-Light"  # reportlab's built-in Chinese CID font: no font file needed
_NO_LINE_START = set("，。、；：？！”’）》」』,.;:?!)")


def source_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def write_pdf(lines: list[str], path: Path, columns: int = 2, size: float = 10.0, created: str = "") -> int:
    """A multi-column A4 newspaper-style page set; returns the number of pages. `created` (YYYY-MM-DD)
    is written as the PDF's CreationDate, as a newspaper's e-paper export does.

    Each line is wrapped to the column width; paragraphs are separated by a blank line.
    Rows are drawn across the columns in turn (left line 1, right line 1, ...), so a reader
    that follows the drawing order instead of the layout interleaves the columns.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    width, height = A4
    margin, gutter, leading = 40.0, 30.0, size * 1.4
    column_width = (width - 2 * margin - (columns - 1) * gutter) / columns
    rows = int((height - 2 * margin) / leading)
    wrapped: list[str] = []
    for line in lines:
        current = ""
        for char in line:
            # Chinese typesetting never starts a line with closing punctuation: it hangs in the margin.
            if pdfmetrics.stringWidth(current + char, FONT, size) > column_width and char not in _NO_LINE_START:
                wrapped.append(current)
                current = ""
            current += char
        wrapped += [current, ""]
    pdf = canvas.Canvas(str(path), pagesize=A4)
    if created:
        pdf.setDateFormatter(lambda *now: f"D:{created.replace('-', '')}080000+08'00'")
    pages = 0
    while wrapped:
        page = [wrapped[i * rows : (i + 1) * rows] for i in range(columns)]
        wrapped = wrapped[columns * rows :]
        pdf.setFont(FONT, size)
        for row in range(rows):
            for col, column in enumerate(page):
                if row < len(column) and column[row]:
                    pdf.drawString(margin + col * (column_width + gutter), height - margin - row * leading, column[row])
        pages += 1
        pdf.drawCentredString(width / 2, margin / 2, str(pages))
        pdf.showPage()
    pdf.save()
    return pages


def write_docx(lines: list[str], path: Path, created: str = "") -> None:
    import datetime

    import docx

    document = docx.Document()
    if created:
        document.core_properties.created = datetime.datetime.fromisoformat(created)
    document.add_heading(lines[0], level=1)
    for line in lines[1:]:
        document.add_paragraph(line)
    document.save(str(path))


def write_html(lines: list[str], path: Path, encoding: str = "utf-8") -> None:
    """The article inside a news site's page: header, navigation, an ad, a sidebar of links, a footer."""
    body = "".join(f"<p>{html.escape(line)}</p>\n" for line in lines[1:])
    page = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="{encoding}"><title>{html.escape(lines[0])} - 工人日报网</title>
<meta property="article:published_time" content="2023-05-03"></head>
<body>
<header><div class="logo">工人日报网</div>
<nav><ul><li><a href="/">首页</a></li><li><a href="/news">要闻</a></li><li><a href="/union">工会</a></li><li><a href="/about">关于我们</a></li></ul></nav></header>
<div class="ad banner"><a href="/ad">广告：新楼盘火热认购中，咨询电话400-000-0000</a></div>
<main><article><h1>{html.escape(lines[0])}</h1>
<div class="article-body">
{body}</div></article></main>
<aside class="sidebar"><h3>热门文章</h3><ul><li><a href="/a/1">全国劳动模范表彰大会召开</a></li><li><a href="/a/2">多地出台新就业形态劳动者权益保障措施</a></li></ul></aside>
<footer><p>版权所有 工人日报社 京ICP备00000000号</p><p><a href="/contact">联系我们</a> | <a href="/map">网站地图</a></p></footer>
</body></html>
"""
    path.write_bytes(page.encode(encoding))


def write_markdown(lines: list[str], path: Path) -> None:
    """A heading, then paragraphs; the second in bold, so markup must be stripped."""
    body = [f"**{line}**" if i == 0 else line for i, line in enumerate(lines[1:])]
    path.write_text(f"# {lines[0]}\n\n" + "\n\n".join(body) + "\n", encoding="utf-8")


WRITERS = {".pdf": write_pdf, ".docx": write_docx, ".html": write_html, ".md": write_markdown}
