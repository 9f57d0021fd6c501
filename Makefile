# The README's two commands: `make test` and `make book`.
# Each creates .venv when it is missing (torch first, from the pin in pyproject.toml,
# so pip takes the CPU build), then installs the package with its dev extras.
# A stamp keyed on pyproject.toml makes a second run cost nothing.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.vidstudy-installed
TORCH  := $(shell grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')

.PHONY: test book env clean

env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

book: $(STAMP)
	$(VENV)/bin/vidstudy book

clean:
	rm -rf _build book/executed
