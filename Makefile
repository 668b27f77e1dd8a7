# Frontdesk: `make demo` and `make test` work from a clean clone with only Python 3.11 installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install clean

$(BIN)/frontdesk: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/frontdesk
	$(BIN)/pybabel -q compile -d locales -D messages

demo: install
	$(BIN)/frontdesk demo

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/test

clean:
	rm -rf $(VENV) .coverage coverage.xml .mypy_cache .ruff_cache .pytest_cache
	find locales -name '*.mo' -delete
