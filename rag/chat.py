"""The chat page (`rag app`, or `python app.py`, or `make app`): http://127.0.0.1:7860.

Streaming answers, the sources of every answer beside it (file, title, passage
with the supporting sentences highlighted, the whole article on demand),
conversations kept across restarts (each browser tab its own), 👍/👎 and a note on
every answer, settings for model and passages, and an upload that indexes new articles.
Fully offline: no CDN fonts, analytics off, bound to loopback unless --host.
"""
from __future__ import annotations

import hmac
import html
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from .assistant import Assistant, QuestionError  # noqa: E402
from .desk import Journal, JournalError, open_journal  # noqa: E402
from .desk.articles import catalogue_of, matching, restore, to_trash, trashed  # noqa: E402
from .desk.journal import answer_model, generation  # noqa: E402
from .desk.pages import cached_png  # noqa: E402
from .loaders import SUPPORTED, load  # noqa: E402
from .loaders.decode import SkippedFileError, UnreadableFileError  # noqa: E402
from .server import is_loopback  # noqa: E402
from .text.sentences import split_sentences  # noqa: E402
from .types import Answer, Scope, ScopeError  # noqa: E402
from .upload import store_upload  # noqa: E402

log = logging.getLogger("zhiwen.app")

MODELS = {
    "Qwen2.5 1.5B (best)": {"llm_backend": "llama", "llm_model": "qwen2.5-coder-1.5b"},
    "Qwen2.5 0.5B (fast)": {"llm_backend": "llama", "llm_model": "qwen2.5-coder-0.5b"},
    "Extractive (no model)": {"llm_backend": "extractive"},
}
EXAMPLES = [
    "宜昌市在全省建立了多少家疗休养基地？",
    "樂陵市總工會2022年成立了多少個基層工會？",
    "How many outdoor worker rest stations has the Jinan Federation of Trade Unions built?",
]
# System fonts only: the default theme would fetch Google Fonts, and this app runs offline.
THEME = gr.themes.Soft(font=["system-ui", "PingFang SC", "Microsoft YaHei", "sans-serif"], font_mono=["ui-monospace", "monospace"])
CSS = """
.source {border:1px solid var(--border-color-primary); border-radius:8px; padding:8px 12px; margin-bottom:10px}
.source .meta {font-size:0.85em; color:var(--body-text-color-subdued)}
.source mark {background:#fde68a; color:inherit; padding:0 1px}
.refused {color:var(--body-text-color-subdued); font-style:italic}
.article .sentence:nth-child(odd) {background:var(--background-fill-secondary)}
.article .sentence {border-right:2px solid var(--border-color-accent); padding:0 2px}
"""
PAGE_ROWS = 50
PAGES = Path(tempfile.gettempdir()) / "zhiwen-pages"  # rendered PDF pages, served to the page (allowed_paths)
COLUMNS = ["file", "article", "title", "format", "pages", "chunks", "date", "reporter", "problem"]


def sources_html(answer: Answer | None, assistant: Assistant) -> str:
    if answer is None:
        return "<p class='refused'>Sources of the answer appear here.</p>"
    if answer.refused or not answer.citations:
        return "<p class='refused'>No source: the articles do not contain this. 文章中没有相关信息。</p>"
    evidence = answer.trace.evidence
    retrieved = answer.trace.passages
    blocks = []
    for number, passage in enumerate(answer.citations, 1):
        at = passage.text.find(passage.quote) if passage.quote else -1
        if at >= 0:  # exactly the fragment the answer rests on
            spans = [(at, at + len(passage.quote))]
        else:
            spans = [(e.start, e.end) for e in evidence if e.passage < len(retrieved) and retrieved[e.passage].chunk_id == passage.chunk_id]
        quoted = f" · quote at {passage.quote_start}–{passage.quote_end}" if passage.quote_start >= 0 else ""
        page = f" · p. {passage.page}" if passage.page else ""
        try:
            title, article = assistant.article_text(passage.source, passage.article)
        except OSError:  # removed from the folder after this answer was given
            title, article = passage.title, "This file is no longer in the archive; the passage above is what it said when indexed."
        blocks.append(
            f"<div class='source'><div><b>[{number}] {html.escape(title)}</b></div>"
            f"<div class='meta'>{html.escape(passage.source)}{page} · characters {passage.start}–{passage.end}{quoted}</div>"
            f"<p>{_highlight(passage.text, spans)}</p>"
            f"<details><summary>Whole article</summary><p>{html.escape(article).replace(chr(10), '<br>')}</p></details>"
            f"{printed_page(passage, assistant)}</div>"
        )
    return "".join(blocks)


def printed_page(passage, assistant: Assistant) -> str:
    """For a PDF source: its page as printed, the quoted span highlighted, one click away."""
    if not passage.page or not passage.source.lower().endswith(".pdf"):
        return ""
    path = assistant.config.seeds_dir / passage.source
    try:
        png = cached_png(path, passage.page, passage.quote or passage.text[:60], PAGES)
    except Exception as exc:  # a page that will not render costs the answer nothing
        log.warning("%s p. %d: page not rendered (%s)", passage.source, passage.page, exc)
        return ""
    return (f"<details class='page'><summary>Page {passage.page} as printed</summary>"
            f"<img src='/gradio_api/file={html.escape(str(png))}' alt='page {passage.page} of {html.escape(passage.source)}' "
            f"style='max-width:100%'></details>")


def _highlight(text: str, spans: list[tuple[int, int]]) -> str:
    out, pos = [], 0
    for a, b in sorted(spans):
        if a < pos:
            continue
        out += [html.escape(text[pos:a]), "<mark>", html.escape(text[a:b]), "</mark>"]
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out).replace("\n", "<br>")


def model_choices(assistant: Assistant) -> dict[str, dict]:
    """The built-in models, led by the configured one (e.g. RAG_LLM_MODEL=/path/to.gguf) if it is none of them."""
    settings = ("llm_backend", "llm_model", "llm_url")
    current = {f: getattr(assistant.config, f) for f in settings}
    for label, choice in MODELS.items():
        if all(current[f] == value for f, value in choice.items()):
            return {label: choice, **{k: v for k, v in MODELS.items() if k != label}}
    name = current["llm_url"] if current["llm_backend"] == "openai" else Path(str(current["llm_model"])).name
    return {f"Configured: {name}": current, **MODELS}


class Catalogue:
    """The articles of the index answering now, listed once per index generation."""

    def __init__(self, assistant: Assistant):
        self.assistant = assistant

    def entries(self) -> list:
        return catalogue_of(self.assistant.retriever.index)

    def page(self, folder: str, text: str, number: float) -> tuple[list[list], str]:
        found = matching(self.entries(), folder, text)
        pages = max(1, -(-len(found) // PAGE_ROWS))
        number = min(max(1, int(number or 1)), pages)
        rows = [[e.source, e.article, e.title, e.format, e.pages, e.chunks, e.date, e.reporter, e.problem]
                for e in found[(number - 1) * PAGE_ROWS: number * PAGE_ROWS]]
        said = f"{len(found)} articles" + (f" in {folder.strip()}" if folder.strip() else "") + (f" matching “{text.strip()}”" if text.strip() else "")
        return rows, f"{said}; page {number} of {pages}." if found else f"No article matches ({said.replace('0 articles', 'none')})."


def article_html(title: str, text: str) -> str:
    """The article as indexed, each sentence (as the evidence stage splits it) marked."""
    spans = split_sentences(text)
    parts, pos = [], 0
    for number, (a, b) in enumerate(spans, 1):
        parts += [html.escape(text[pos:a]), f"<span class='sentence' title='sentence {number}'>{html.escape(text[a:b])}</span>"]
        pos = b
    parts.append(html.escape(text[pos:]))
    body = "".join(parts).replace("\n", "<br>")
    return f"<div class='article'><h4>{html.escape(title)}</h4><p class='meta'>{len(spans)} sentences</p><p>{body}</p></div>"


class Desk:
    """The app's use of the journal: any trouble with it turns history off for the session, said
    on the page, and the chat goes on answering."""

    def __init__(self, journal: Journal | None, off: str = ""):
        self.journal, self.off = journal, off

    def line(self) -> str:
        return f"⚠️ History is off: {self.off}" if self.off else ""

    def call(self, method: str, *args, default=None):
        if self.journal is None:
            return default
        try:
            return getattr(self.journal, method)(*args)
        except JournalError as exc:
            log.warning("history off: %s", exc)
            self.journal, self.off = None, str(exc)
            return default


def owner_of(request: gr.Request | None) -> str:
    """Whose conversations: the login name when the app asks for one, else this machine's user."""
    return (request.username if request is not None and request.username else None) or "local"


def conversation_choices(desk: Desk, owner: str) -> list[tuple[str, str]]:
    return [(f"{c.title or '(untitled)'} · {time.strftime('%Y-%m-%d %H:%M', time.localtime(c.updated))} · {c.turns} Q",
             c.id) for c in desk.call("conversations", owner, default=[])]


def feedback_table(desk: Desk) -> list[list]:
    return [list(row) for row in desk.call("feedback_by_day", default=[])]


def build(assistant: Assistant, desk: Desk | None = None) -> gr.Blocks:
    models = model_choices(assistant)
    desk = desk or Desk(*open_journal(assistant.config.desk_file))

    def respond(message: str, chat: list[dict], model: str, k: float, conversation: str | None, turns: list,
                scope: Scope, request: gr.Request):
        settings = {**models[model], "k": int(k)}  # this user's, for this question: the Assistant is shared
        writer = answer_model(assistant.config.with_overrides(**settings))
        prior = list(chat)
        chat = prior + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        turns = list(turns) + [None, None]  # the turn id of each message of `chat` (None for questions)
        try:
            for item in assistant.ask_stream(message, history=prior, scope=scope, **settings):
                if isinstance(item, Answer):
                    chat[-1]["content"] = item.text
                    if conversation is None:
                        conversation = desk.call("start", owner_of(request))
                    if conversation is not None:
                        turns[-1] = desk.call("record", conversation, message, item, writer,
                                              generation(assistant.retriever.index.manifest))
                    yield chat, sources_html(item, assistant), "", conversation, turns
                else:
                    chat[-1]["content"] += item
                    yield chat, gr.skip(), "", gr.skip(), gr.skip()
        except (QuestionError, RuntimeError, ValueError) as exc:
            chat[-1]["content"] = f"⚠️ {exc}"
            yield chat, sources_html(None, assistant), message, conversation, turns

    def mark(turns: list, liked: gr.LikeData):
        """👍/👎 on an answer; the note box then attaches a note to it."""
        index = liked.index if isinstance(liked.index, int) else liked.index[0]
        turn = turns[index] if 0 <= index < len(turns) else None
        if turn is None:
            return None, "This answer was not kept (history is off), so it cannot be marked."
        right = liked.liked is True if isinstance(liked.liked, bool) else None
        desk.call("rate", turn, right)
        said = {True: "right", False: "wrong", None: "unmarked"}[right]
        return turn, f"Marked {said}. Add a note (what the right answer is, or what went wrong) and save it."

    def save_note(turn: str | None, note: str):
        if turn is None:
            return "Mark an answer right or wrong (the thumbs under it) first; the note goes with it.", note, feedback_table(desk)
        if not note.strip():
            return "Write the note first.", note, feedback_table(desk)
        saved = desk.call("annotate", turn, note)
        return ("Note saved with the answer." if saved else "Not saved: " + (desk.off or "that answer is no longer kept.")), "", feedback_table(desk)

    def listed(request: gr.Request, keep: str | None = None):
        choices = conversation_choices(desk, owner_of(request))
        return gr.update(choices=choices, value=keep if keep in {v for _, v in choices} else None)

    def on_load(request: gr.Request):
        return listed(request)

    def after_answer(request: gr.Request):
        return desk.line(), listed(request)

    def open_conversation(conversation: str | None, request: gr.Request):
        found = desk.call("conversation", conversation) if conversation else None
        if found is None or found.owner != owner_of(request):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), "Choose one of your conversations first."
        chat, turns, marks = [], [], []
        for t in desk.call("turns", conversation, default=[]):
            chat += [{"role": "user", "content": t.question}, {"role": "assistant", "content": t.answer}]
            turns += [None, t.id]
            marks.append({1: "Like", -1: "Dislike"}.get(t.rating))
        return gr.update(value=chat, feedback_value=marks), conversation, turns, sources_html(None, assistant), f"Opened “{found.title}” ({found.turns} questions); ask a follow-up."

    def rename(conversation: str | None, title: str, request: gr.Request):
        if not conversation or not title.strip():
            return gr.skip(), "Choose a conversation and write its new name."
        done = desk.call("rename", conversation, title, owner_of(request))
        return listed(request, conversation), "Renamed." if done else "Not renamed: " + (desk.off or "no such conversation.")

    def delete(chosen: str | None, current: str | None, request: gr.Request):
        if not chosen:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), "Choose a conversation to delete."
        done = desk.call("delete", chosen, owner_of(request))
        note = "Deleted." if done else "Not deleted: " + (desk.off or "no such conversation.")
        if chosen == current:  # the open one is gone: start afresh
            return listed(request), [], None, [], note
        return listed(request), gr.skip(), gr.skip(), gr.skip(), note

    def add_articles(files: list[str] | None, replace: bool, progress=gr.Progress(track_tqdm=True)) -> str:
        if not files:
            return f"Choose one or more articles first ({' '.join(SUPPORTED)})."
        notes, refused = [], []
        for name in files:
            path = Path(name)
            try:
                load(path, assistant.config.max_file_mb)  # refuse what cannot be read before it enters the archive
                notes.append(store_upload(path, assistant.config.seeds_dir, replace=replace).note)
            except (UnreadableFileError, SkippedFileError, OSError) as exc:
                refused.append(str(exc))
            except Exception as exc:  # one file a loader trips on never costs the others their place in the index
                log.exception("%s: upload failed", path.name)
                refused.append(f"{path.name}: could not be read ({type(exc).__name__}: {exc})")
        lines = [f"- {note}" for note in notes]
        if notes:
            report = assistant.index(progress=True)
            lines.append(f"Indexed: {report.embedded} new chunks, {report.chunks} in total.")
            lines += [f"- Not indexed: {p}" for p in report.problems.values()]
        lines += [f"- Refused: {r}" for r in refused]
        return "\n".join(lines)

    articles = Catalogue(assistant)

    def set_scope(folder: str, since: str, until: str):
        """The part of the archive this tab asks (kept per tab, like its conversation)."""
        try:
            scope = Scope(folder.strip(), since.strip(), until.strip())
        except ScopeError as exc:
            return gr.skip(), f"{exc}; the filter is unchanged."
        if not scope:
            return scope, "Questions are asked of the whole archive."
        count = len(matching(articles.entries(), scope.folder)) if not (scope.since or scope.until) else None
        said = " · ".join(x for x in (scope.folder and f"folder {scope.folder}", scope.since and f"from {scope.since}",
                                       scope.until and f"until {scope.until}") if x)
        return scope, f"Questions are asked of: {said}" + (f" ({count} articles)." if count is not None else ".")

    def list_articles(folder: str, text: str, number: float):
        return articles.page(folder, text, number)

    def open_article(source: str, article: float):
        if not source.strip():
            return "<p class='refused'>Choose an article in the list (click its row) or type its file.</p>"
        try:
            title, text = assistant.article_text(source.strip(), int(article or 0))
        except OSError:
            return f"<p class='refused'>{html.escape(source)} is no longer in the seeds folder.</p>"
        return article_html(title, text)

    def picked(table, event: gr.SelectData):
        row = event.row_value if event.row_value else []
        return (row[0], row[1]) if len(row) >= 2 else (gr.skip(), gr.skip())

    def after_change(note: str, folder: str, text: str, number: float):
        report = assistant.sync(wait=True)  # its chunks leave the index before the next answer
        rows, line = articles.page(folder, text, number)
        counts = f" Index updated: {len(report.removed)} removed, {len(report.added)} added; {report.chunks} chunks." if report else ""
        return note + counts, rows, line, gr.update(choices=[t for t, _ in trashed(assistant.config.seeds_dir)], value=None)

    def delete_article(source: str, folder: str, text: str, number: float):
        source = source.strip()
        try:
            place = to_trash(assistant.config.seeds_dir, source)
        except (OSError, ValueError) as exc:
            return f"Not deleted: {exc}", gr.skip(), gr.skip(), gr.skip()
        kept = place.relative_to(assistant.config.seeds_dir).as_posix()
        return after_change(f"{source} moved to {kept} (restorable below).", folder, text, number)

    def reindex_article(source: str, folder: str, text: str, number: float):
        source = source.strip()
        if not source or not (assistant.config.seeds_dir / source).is_file():
            return f"Not re-indexed: {source or 'choose a file'} is not in the seeds folder.", gr.skip(), gr.skip(), gr.skip()
        report = assistant.index(progress=False, again={source})
        problem = report.problems.get(source)
        note = f"{source} re-indexed." + (f" Not indexed: {problem}" if problem else "")
        rows, line = articles.page(folder, text, number)
        return note, rows, line, gr.skip()

    def restore_article(trash_path: str | None, folder: str, text: str, number: float):
        if not trash_path:
            return "Choose a file in the trash first.", gr.skip(), gr.skip(), gr.skip()
        try:
            source = restore(assistant.config.seeds_dir, trash_path)
        except (OSError, ValueError) as exc:
            return f"Not restored: {exc}", gr.skip(), gr.skip(), gr.skip()
        return after_change(f"{source} is back in the seeds folder.", folder, text, number)

    def rescan() -> str:
        report = assistant.sync(wait=True)
        if report is None:
            return "The index already matches the seeds folder."
        counts = f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed"
        return "\n".join([f"Re-indexed: {counts}; {report.chunks} chunks in total."] + [f"- Not indexed: {p}" for p in report.problems.values()])

    with gr.Blocks(title="zhiwen 知文", analytics_enabled=False) as demo:
        gr.Markdown("## 知文 zhiwen — ask the news archive\nAnswers come only from the articles in the archive, with their sources.")
        with gr.Row():
            with gr.Column(scale=3):
                history_line = gr.Markdown(desk.line(), elem_id="history-line")
                chatbot = gr.Chatbot(label="Chat", height=460, elem_id="chat")
                question = gr.Textbox(label="Question", placeholder="问一个关于文章的问题… / Ask about the articles…", elem_id="question")
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="ask")
                    clear = gr.Button("New conversation", elem_id="clear")
                with gr.Row():
                    note = gr.Textbox(label="Note on the answer you marked (thumbs up or down under it)", scale=4, elem_id="note")
                    save = gr.Button("Save note", scale=1, elem_id="save-note")
                feedback_status = gr.Markdown(elem_id="feedback-status")
                gr.Examples(EXAMPLES, inputs=question, label="Examples (简体 / 繁體 / English)")
                indexing = gr.Markdown(assistant.indexing.line(), elem_id="indexing")
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                sources = gr.HTML(sources_html(None, assistant), elem_id="sources")
        conversation = gr.State(None)  # per browser tab: two tabs are two conversations
        scope = gr.State(Scope())
        turns = gr.State([])
        rated = gr.State(None)
        with gr.Accordion("Conversations", open=False):
            with gr.Row():
                past = gr.Dropdown([], label="Your conversations (latest first)", scale=3, elem_id="conversations")
                title = gr.Textbox(label="New name", scale=2, elem_id="conversation-name")
            with gr.Row():
                resume = gr.Button("Open", elem_id="open-conversation")
                rename_button = gr.Button("Rename", elem_id="rename-conversation")
                delete_button = gr.Button("Delete", variant="stop", elem_id="delete-conversation")
            conversation_status = gr.Markdown()
            days = gr.Dataframe(feedback_table(desk), headers=["day (UTC)", "answers", "marked right", "marked wrong"],
                                label="Feedback by day", interactive=False, elem_id="feedback-days")
        with gr.Accordion("Articles", open=False):
            with gr.Row():
                folder = gr.Textbox(label="Folder", placeholder="2024/07", scale=2, elem_id="article-folder")
                find = gr.Textbox(label="Title, file, reporter or date contains", scale=3, elem_id="article-text")
                number = gr.Number(1, label="Page", precision=0, minimum=1, scale=1, elem_id="article-page")
                show = gr.Button("List", scale=1, elem_id="list-articles")
            listing = gr.Markdown(elem_id="article-count")
            table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, elem_id="article-table")
            with gr.Row():
                source = gr.Textbox(label="File (click a row)", scale=3, elem_id="article-source")
                article = gr.Number(0, label="Article in the file", precision=0, minimum=0, scale=1, elem_id="article-number")
                open_button = gr.Button("Show as indexed", scale=1, elem_id="open-article")
                reindex_button = gr.Button("Re-index file", scale=1, elem_id="reindex-article")
                delete_article_button = gr.Button("Delete file (to trash)", variant="stop", scale=1, elem_id="delete-article")
            with gr.Row():
                trash = gr.Dropdown([t for t, _ in trashed(assistant.config.seeds_dir)], label="Trash", scale=3, elem_id="trash")
                restore_button = gr.Button("Restore", scale=1, elem_id="restore-article")
            article_status = gr.Markdown(elem_id="article-status")
            article_view = gr.HTML(elem_id="article-view")
        with gr.Accordion("Settings and uploads", open=False):
            with gr.Row():
                model = gr.Radio(list(models), value=next(iter(models)), label="Answer model")
                k = gr.Slider(1, 10, value=assistant.config.k, step=1, label="Passages retrieved")
            with gr.Row():
                scope_folder = gr.Textbox(label="Ask only the folder", placeholder="2024/07", elem_id="scope-folder")
                scope_since = gr.Textbox(label="Articles dated from", placeholder="YYYY-MM-DD", elem_id="scope-since")
                scope_until = gr.Textbox(label="until", placeholder="YYYY-MM-DD", elem_id="scope-until")
            scope_line = gr.Markdown(elem_id="scope-line")
            # No file_types filter: Gradio would refuse a whole batch for one odd file; each file is judged on its own.
            upload = gr.File(label=f"Add articles ({' '.join(SUPPORTED)})", file_count="multiple")
            replace = gr.Checkbox(False, label="Replace files that have the same name (otherwise both are kept)")
            with gr.Row():
                add = gr.Button("Add and index")
                sync = gr.Button("Re-scan the seeds folder")
            status = gr.Markdown()

        for trigger in (question.submit, send.click):
            trigger(respond, [question, chatbot, model, k, conversation, turns, scope], [chatbot, sources, question, conversation, turns],
                    api_name="respond" if trigger == send.click else False
                    ).then(after_answer, None, [history_line, past], api_name=False)
        clear.click(lambda: ([], sources_html(None, assistant), "", None, []), None, [chatbot, sources, question, conversation, turns], api_name=False)
        chatbot.like(mark, turns, [rated, feedback_status], api_name=False)
        save.click(save_note, [rated, note], [feedback_status, note, days], api_name=False)
        demo.load(on_load, None, past, api_name=False)
        resume.click(open_conversation, [past], [chatbot, conversation, turns, sources, conversation_status], api_name=False)
        rename_button.click(rename, [past, title], [past, conversation_status], api_name=False)
        delete_button.click(delete, [past, conversation], [past, chatbot, conversation, turns, conversation_status], api_name=False)
        add.click(add_articles, [upload, replace], status, api_name="add_articles")
        for box in (scope_folder, scope_since, scope_until):
            box.submit(set_scope, [scope_folder, scope_since, scope_until], [scope, scope_line], api_name=False)
            box.blur(set_scope, [scope_folder, scope_since, scope_until], [scope, scope_line], api_name=False)
        filters = [folder, find, number]
        for trigger in (show.click, folder.submit, find.submit, number.submit):
            trigger(list_articles, filters, [table, listing], api_name="articles" if trigger == show.click else False)
        table.select(picked, table, [source, article], api_name=False)
        open_button.click(open_article, [source, article], article_view, api_name="article")
        delete_article_button.click(delete_article, [source, *filters], [article_status, table, listing, trash], api_name="delete_article")
        reindex_button.click(reindex_article, [source, *filters], [article_status, table, listing, trash], api_name="reindex_article")
        restore_button.click(restore_article, [trash, *filters], [article_status, table, listing, trash], api_name="restore_article")
        sync.click(rescan, None, status, api_name="rescan")
        # Files dropped into the folder are indexed in the background: say so while it runs.
        gr.Timer(2.0).tick(lambda: assistant.indexing.line(), None, indexing, api_name=False, show_progress="hidden")
    return demo


class LoginThrottle:
    """The login check: each wrong password makes the next attempt wait twice as long (1 s, 2 s, …
    up to `most` s), so a password cannot be guessed at network speed; a right one resets it."""

    def __init__(self, key: str, most: float = 16.0, sleep=time.sleep):
        self.key, self.most, self.sleep = key, most, sleep
        self.delay = 0.0
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str) -> bool:
        with self._lock:
            delay = self.delay
        if delay:
            self.sleep(delay)
        right = hmac.compare_digest(password.encode(), self.key.encode())
        with self._lock:
            self.delay = 0.0 if right else min(self.most, max(1.0, 2 * self.delay))
        return right


def launch(assistant: Assistant, host: str, port: int, api_key: str | None) -> None:
    """Serve the page until stopped: the index and the models loaded before the first user waits."""
    assistant.warm()
    demo = build(assistant)
    # One model in memory answers one question at a time, in order (the page shows the queue
    # position); a remote model (RAG_LLM_BACKEND=openai) answers several users at once.
    demo.queue(default_concurrency_limit=1 if assistant.config.llm_backend == "llama" else 4)
    if not is_loopback(host) and not api_key:
        log.warning("serving on %s without a password: anyone who can reach this port can read the archive; "
                    "set --api-key or RAG_API_KEY", host)
    PAGES.mkdir(parents=True, exist_ok=True)
    demo.launch(server_name=host, server_port=port, theme=THEME, css=CSS, footer_links=[], allowed_paths=[str(PAGES)],
                auth=LoginThrottle(api_key) if api_key else None,
                auth_message="zhiwen: the password is the server's API key (any user name).")
