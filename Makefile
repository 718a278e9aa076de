# waguard: every command a user needs. `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install demo test test-quick serve synth deploy lint bench fuzz audit report clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

synth: install
	$(BIN)/python app.py

demo: install synth
	$(BIN)/python -m waguard.demo

test: install
	$(BIN)/python -m pytest -n 2 --dist loadgroup

serve: install
	$(BIN)/waguard serve

deploy: install
	npx --yes aws-cdk@2.1033.0 deploy --app "$(BIN)/python app.py"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lambdas infra waguard

bench: install synth
	$(BIN)/python -m bench.run

clean:
	rm -rf cdk.out .pytest_cache bench/results.json
