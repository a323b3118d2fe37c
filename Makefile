# The two commands of the README. Both do all set-up on a fresh machine (cached after the first run).
.PHONY: setup demo test lint schema

setup:
	bash .ci/setup.sh

demo: setup
	.venv/bin/kg-enhance demo

test:
	bash .ci/test.sh

lint: setup
	.venv/bin/ruff check kg_enhance tests benchmarks
	.venv/bin/mypy kg_enhance

schema: setup
	.venv/bin/kg-enhance schema
