# Shorthands for the scripts, which are what the README and CI use.
.PHONY: demo test bench clean

demo:
	scripts/demo

test:
	scripts/test

bench:
	scripts/bootstrap >/dev/null && .venv/bin/python -m bench ingest

clean:
	rm -rf .venv .coverage coverage.xml .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
	find locales -name '*.mo' -delete
