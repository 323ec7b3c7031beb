"""The `rag` command. Heavy libraries are imported inside each command, so help is instant."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions about a folder of Chinese news articles.")
    parser.add_argument("--seeds", type=Path, help="folder of .txt articles (default: seeds/)")
    parser.add_argument("--index", type=Path, help="index folder (default: index/)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build or update the index from the seeds folder")
    p.add_argument("--rebuild", action="store_true", help="re-embed everything instead of only changed files")

    p = sub.add_parser("search", help="show the passages that best match a question")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
    p.add_argument("--fusion", choices=("rrf", "cc", "dense", "bm25"), help="retriever (default: the configured hybrid)")

    p = sub.add_parser("models", help="install the bundled models into models/")
    p.add_argument("action", choices=("install",))
    p.add_argument("--force", action="store_true", help="convert again even if the model folder exists")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("jieba", "sentence_transformers", "httpx", "faiss", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 2


def _assistant(args: argparse.Namespace):
    from .assistant import Assistant

    return Assistant(seeds_dir=args.seeds, index_dir=args.index)


def cmd_index(args: argparse.Namespace) -> int:
    report = _assistant(args).index(rebuild=args.rebuild)
    print(
        f"{report.chunks} chunks indexed in {report.seconds:.1f}s: "
        f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed, "
        f"{len(report.unchanged)} unchanged; {report.embedded} chunks embedded"
    )
    for problem in report.problems.values():
        print(f"  not indexed: {problem}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    passages = _assistant(args).retrieve(args.question, k=args.k, fusion=args.fusion)
    if not passages:
        print("no passages found")
    for rank, p in enumerate(passages, 1):
        print(f"[{rank}] {p.source}  {p.start}-{p.end}  score={p.score:.4f}")
        print(f"    {p.title}")
        print("    " + p.text.replace("\n", "\n    "))
        print()
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .config import load_config
    from .models import install_models

    for line in install_models(load_config(), force=args.force):
        print(line)
    return 0


COMMANDS = {"index": cmd_index, "search": cmd_search, "models": cmd_models}

if __name__ == "__main__":
    sys.exit(main())
