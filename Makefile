# The two commands of the README:   make book   |   make test
# Both create .venv and install specvae with everything the book and its tests need, at the exact versions the
# book was built with (constraints.txt), on a fresh machine.
PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.specvae-installed
CONSTRAINTS := constraints.txt
PYTEST_ARGS ?=

.PHONY: install weights test book check-wheel constraints clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[book,dev,text]"
	touch $(STAMP)

install: $(STAMP)

## fetch the pretrained files (LPIPS backbones, FID Inception, Watson-DFT parameters); fails when one is missing
weights: install
	$(BIN)/specvae weights fetch

## run the whole test suite (unit tests, smoke runs of every chapter, the book build). What this machine lacks
## (data sets, pretrained files) skips the tests that need it, listed at the end; SPECVAE_REQUIRE_DATA=1 fails them.
test: install
	@$(BIN)/specvae weights fetch || echo "make test: not every pretrained file could be had (see above); the tests that need one are skipped and listed at the end"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## build the HTML book from the stored, executed chapters (no training, no execution)
book: install
	$(BIN)/specvae book build
	@echo "open _build/html/index.html"

## build the wheel and install it with its core dependencies only into a clean venv; run the README's example
check-wheel:
	PYTHON=$(PYTHON) bash .ci/check-wheel

## rewrite constraints.txt from the current .venv (after a deliberate upgrade)
constraints: install
	{ sed -n '/^#/p' $(CONSTRAINTS); $(BIN)/python -m pip freeze --exclude-editable | grep -iv '^specvae\b'; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf _build .pytest_cache dist
