# The two commands of the README:   make book   |   make test
# Both create .venv and install specvae with everything it needs on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.specvae-installed

.PHONY: install weights test book smoke-book clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## fetch the pretrained networks the metrics need (LPIPS backbones, FID Inception)
weights: install
	$(BIN)/specvae weights fetch

## run the whole test suite (unit tests, smoke runs of every chapter, the book build)
test: weights
	$(BIN)/python -m pytest

## build the HTML book from the stored, executed chapters (no training, no execution)
book: install
	$(BIN)/specvae book build
	@echo "open _build/html/index.html"

clean:
	rm -rf _build .pytest_cache
