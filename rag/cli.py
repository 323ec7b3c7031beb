"""The `rag` command. Heavy libraries are imported inside each command, so help is instant."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions about a folder of Chinese news articles.")
    parser.add_argument("--seeds", type=Path, help="folder of articles (.txt .md .html .pdf .docx), read recursively (default: seeds/)")
    parser.add_argument("--index", type=Path, help="index folder (default: index/)")
    parser.add_argument("--store", choices=("faiss", "milvus"), help="where the index lives (default: faiss, or $RAG_STORE)")
    parser.add_argument("--milvus-uri", help="Milvus Lite file (default: <index>/milvus.db) or server, e.g. http://host:19530")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    # The folders may also follow the command (`rag serve --seeds …`); SUPPRESS keeps an earlier value.
    folders = argparse.ArgumentParser(add_help=False)
    folders.add_argument("--seeds", type=Path, default=argparse.SUPPRESS, help="folder of articles (default: seeds/)")
    folders.add_argument("--index", type=Path, default=argparse.SUPPRESS, help="index folder (default: index/)")
    folders.add_argument("--store", choices=("faiss", "milvus"), default=argparse.SUPPRESS, help="where the index lives")
    folders.add_argument("--milvus-uri", default=argparse.SUPPRESS, help="Milvus Lite file or server URI")
    scoped = argparse.ArgumentParser(add_help=False)  # searched inside retrieval, not after it
    scoped.add_argument("--folder", default="", help="only articles in this folder of the seeds (and its subfolders), e.g. 2024/07")
    scoped.add_argument("--since", default="", help="only articles dated on or after this day (YYYY-MM-DD; undated ones are left out)")
    scoped.add_argument("--until", default="", help="only articles dated on or before this day (YYYY-MM-DD)")
    answering = argparse.ArgumentParser(add_help=False)  # which model answers: ask, eval, serve and app alike
    answering.add_argument("--model", help="answer model (default: the configured one): qwen2.5-coder-1.5b, qwen2.5-coder-0.5b or a GGUF path")
    answering.add_argument("--extractive", action="store_true", help="no language model: show the best supporting sentences")
    answering.add_argument("--url", help="answer with an OpenAI-compatible server at this URL instead of the local model")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", parents=[folders], help="build or update the index from the seeds folder")
    p.add_argument("--rebuild", action="store_true", help="re-embed everything instead of only changed files")
    p.add_argument("--compact", action="store_true",
                   help="then merge the index's segments into one, dropping deleted rows (FAISS store; builds do it when due)")

    p = sub.add_parser("search", parents=[folders, scoped], help="show the passages that best match a question")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
    p.add_argument("--fusion", choices=("rrf", "cc", "dense", "bm25"), help="retriever (default: the configured hybrid)")

    p = sub.add_parser("ask", parents=[folders, scoped, answering], help="answer a question with citations (streams the answer)")
    p.add_argument("question")

    p = sub.add_parser("eval", parents=[folders, answering], help="grade answers on a JSONL question set")
    p.add_argument("questions", type=Path)
    p.add_argument("--json", type=Path, help="also write per-question results here")

    p = sub.add_parser("serve", parents=[folders, answering],
                       help="answer over HTTP in OpenAI's API shape (/v1/chat/completions, /v1/search)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get("RAG_API_KEY"), help="require `Authorization: Bearer KEY` (default: $RAG_API_KEY)")

    p = sub.add_parser("app", parents=[folders, answering], help="the chat page in a browser (also: python app.py, make app)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 to serve your network; default: loopback only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--api-key", default=os.environ.get("RAG_API_KEY"),
                   help="ask for this password at login, any user name (default: $RAG_API_KEY)")

    p = sub.add_parser("config", help="the settings in effect (defaults, RAG_* variables), or --markdown: their reference")
    p.add_argument("--markdown", action="store_true", help="write the reference of every setting (docs/configuration.md)")

    p = sub.add_parser("feedback", parents=[folders], help="answers users marked right or wrong: counts by day, "
                       "or `export FILE` as a question set that `rag eval FILE` runs")
    p.add_argument("action", nargs="?", choices=("days", "export"), default="days")
    p.add_argument("out", nargs="?", type=Path, help="export: the JSONL file to write")
    p.add_argument("--desk", type=Path, help="conversation file (default: desk.sqlite3 beside the index folder, or $RAG_DESK_PATH)")

    p = sub.add_parser("models", parents=[folders], help="install the bundled models into models/")
    p.add_argument("action", choices=("install",))
    p.add_argument("--force", action="store_true", help="convert again even if the model folder exists")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("jieba", "sentence_transformers", "httpx", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, ValueError, OSError, TypeError) as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 2


def _assistant(args: argparse.Namespace):
    from .assistant import Assistant

    settings = {"store": args.store, "milvus_uri": args.milvus_uri}
    if args.command in ("serve", "app"):  # questions never wait for a dropped file to be embedded
        settings["background_indexing"] = True
    if getattr(args, "model", None):
        settings["llm_model"] = args.model
    if getattr(args, "extractive", False):
        settings["llm_backend"] = "extractive"
    elif getattr(args, "url", None):
        settings.update(llm_backend="openai", llm_url=args.url)
    return Assistant(seeds_dir=args.seeds, index_dir=args.index, **settings)


def _scope(args: argparse.Namespace):
    from .types import Scope

    return Scope(args.folder, args.since, args.until)


def cmd_ask(args: argparse.Namespace) -> int:
    """On a terminal the answer streams, then is replaced by the checked answer if that differs;
    piped, only the checked answer is printed. Either way it appears once."""
    from .types import Answer

    live = sys.stdout.isatty()
    streamed, answer = "", None
    for item in _assistant(args).ask_stream(args.question, scope=_scope(args)):
        if isinstance(item, Answer):
            answer = item
        elif live:
            streamed += item
            print(item, end="", flush=True)
    assert answer is not None
    if live and streamed.strip() == answer.text.strip():
        print()  # what streamed is the checked answer
    else:
        if streamed:
            print("\r" + _erase(streamed), end="")
        print(answer.text)
    for n, p in enumerate(answer.citations, 1):
        print(f"  [{n}] {p.location}  {p.title}")
    return 0


def _erase(text: str) -> str:
    """ANSI codes that move back over `text` as the terminal wrapped it, and clear to the end."""
    import shutil
    import unicodedata

    columns = max(1, shutil.get_terminal_size().columns)
    width = lambda line: sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)  # noqa: E731
    rows = sum(max(1, -(-width(line) // columns)) for line in text.split("\n"))
    return (f"\x1b[{rows - 1}F" if rows > 1 else "") + "\x1b[0J"


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from .evaluate import Report, grade, load_items

    bot = _assistant(args)
    bot.warm()
    report = Report()
    for item in load_items(args.questions):
        graded = grade(item, bot.ask(item["question"]))
        report.items.append(graded)
        mark = "ok " if graded.correct else "BAD"
        print(f"{mark} {graded.id:>6} ttft={graded.ttft:4.1f}s  {graded.question[:40]}  ->  {graded.answer[:80]}", flush=True)
    summary = report.summary()
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "items": [g.__dict__ for g in report.items]}, ensure_ascii=False, indent=1))
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    report = _assistant(args).index(rebuild=args.rebuild, compact=args.compact)
    print(
        f"{report.chunks} chunks indexed in {report.seconds:.1f}s: "
        f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed, "
        f"{len(report.unchanged)} unchanged; {report.embedded} chunks embedded"
        + (" (" + ", ".join(f"{stage} {s:.1f}s" for stage, s in report.timings.items()) + ")" if report.timings else "")
    )
    for problem in report.problems.values():
        print(f"  not indexed: {problem}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    passages = _assistant(args).retrieve(args.question, k=args.k, fusion=args.fusion, scope=_scope(args))
    if not passages:
        print("no passages found")
    for rank, p in enumerate(passages, 1):
        print(f"[{rank}] {p.location}  score={p.score:.4f}")
        print(f"    {p.title}")
        print("    " + p.text.replace("\n", "\n    "))
        print()
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from .config import load_config
    from .desk import Journal
    from .desk.cases import export

    config = load_config(index_dir=args.index, desk_path=args.desk)
    if not config.desk_file.exists():
        raise FileNotFoundError(f"no conversations yet at {config.desk_file} (answers are kept once the app or `rag serve` has given one)")
    journal = Journal(config.desk_file)
    if args.action == "export":
        if args.out is None:
            raise ValueError("say where to write the question set: rag feedback export FILE.jsonl")
        written = export(journal.rated(), args.out)
        print(f"{written} marked answers written to {args.out}; run them with: rag eval {args.out}")
        return 0
    print(f"{'day':<12}{'answers':>9}{'right':>7}{'wrong':>7}")
    for day, answers, right, wrong in journal.feedback_by_day():
        print(f"{day:<12}{answers:>9}{right:>7}{wrong:>7}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .config import load_config
    from .models import install_models

    for line in install_models(load_config(), force=args.force):
        print(line)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    serve(_assistant(args), args.host, args.port, args.api_key)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from .config import load_config
    from .config_reference import in_effect, markdown

    print(markdown() if args.markdown else in_effect(load_config()), end="")
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    from .chat import launch

    launch(_assistant(args), args.host, args.port, args.api_key)
    return 0


COMMANDS = {"index": cmd_index, "search": cmd_search, "ask": cmd_ask, "eval": cmd_eval, "serve": cmd_serve,
            "app": cmd_app, "config": cmd_config, "models": cmd_models, "feedback": cmd_feedback}

if __name__ == "__main__":
    sys.exit(main())
