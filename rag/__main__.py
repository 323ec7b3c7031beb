"""`python -m rag …` is the `rag` command (for a checkout without the console script on PATH)."""
from .cli import main

raise SystemExit(main())
