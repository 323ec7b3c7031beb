"""Word lists shared by more than one stage."""
from __future__ import annotations

# Function characters: they say nothing of what a sentence is about (cite and reader compare wording without them).
GLUE = set("的了是在和与及为由于被把将对从也都就而其这那有个之以所没不否")
