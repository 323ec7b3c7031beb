"""zhiwen chat: `python app.py` (or `make app`, or `rag app`) opens the assistant at http://127.0.0.1:7860.

The page itself is `rag/chat.py`; this file is the entry point the layout names, with the `rag app`
command's options (`python app.py --help`).
"""
import sys

from rag.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["app", *sys.argv[1:]]))
