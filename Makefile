# Quick start:  make app   (set up everything, build the index, open the chat)
#               make test  (set up everything, run the test suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup models index app test browser bench clean

setup: $(VENV)/.installed models

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned in the same install: a bare sentence-transformers install would pull a CUDA build.
	# llama-cpp-python compiles once (~8 min on 2 cores); pip's wheel cache reuses the build afterwards.
	$(BIN)/python -m pip install torch==2.13.0 -e '.[test]'
	touch $@

models: $(VENV)/.installed
	$(BIN)/rag models install

index: setup
	$(BIN)/rag index

app: index
	$(BIN)/python app.py

test: setup browser
	$(BIN)/python -m pytest

# The end-to-end test drives Debian's Chromium through Playwright (no browser download), with a
# CJK font: without one every Chinese character on the page is drawn as a box.
browser:
	@(command -v chromium >/dev/null && fc-list :lang=zh | grep -q .) || \
	 (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null)

bench: setup
	$(BIN)/python bench/retrieval.py
	$(BIN)/rag eval tests/data/seeds_dev.jsonl
	$(BIN)/python bench/llm_speed.py

clean:
	rm -rf index
