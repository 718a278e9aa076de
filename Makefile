# waguard: every command a user needs. `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Bytecode caches on (__pycache__ is ignored by git and excluded from the Lambda assets), whatever the
# caller's environment says: the suite's test modules, each `waguard serve` worker and each CLI run
# would otherwise compile the same sources again (test collection alone: 8 s instead of 4, per worker).
export PYTHONDONTWRITEBYTECODE :=
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: install demo test coverage test-unit test-integration test-scenario serve synth deploy lint bench fuzz audit report clean \
	browser console-screenshot

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@# The project's own bytecode, once (pip compiled the libraries): a fresh clone's first test run would
	@# otherwise have every test worker, `waguard serve` and CLI run compile the same sources at once.
	$(BIN)/python -m compileall -q -j 0 lambdas waguard infra app.py
	@touch $(STAMP)

synth: install
	$(BIN)/python app.py

demo: install synth
	$(BIN)/python -m waguard.demo

# The whole suite (under three and a half minutes on two cores; docs/decisions.md "A suite that runs in
# parallel": three workers on two cores, because many tests wait for a pace, a backoff or a slow fake).
test: install
	$(BIN)/python -m pytest -n 3 --dist loadgroup

# The same suite with line coverage of lambdas/, infra/ and waguard/ (what the tests' own process runs);
# Python 3.11's tracer roughly doubles the in-process tests' time, so it is not the default.
coverage: install
	$(BIN)/python -m pytest -n 3 --dist loadgroup --cov --cov-report=term:skip-covered

# The inner loop: one layer of the suite at a time (`make test` runs them all).
test-unit: install
	$(BIN)/python -m pytest -n 2 tests/unit

test-integration: install
	$(BIN)/python -m pytest -n 2 --dist loadgroup tests/integration

test-scenario: install
	$(BIN)/python -m pytest -n 3 --dist loadgroup tests/scenario

serve: install
	$(BIN)/waguard serve

deploy: install
	npx --yes aws-cdk@2.1148.1 deploy --app "$(BIN)/python app.py"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lambdas
	MYPYPATH= $(BIN)/mypy --config-file /dev/null --ignore-missing-imports --python-version 3.11 infra app.py waguard

bench: install synth
	$(BIN)/python -m bench.run

# The reliability suite at full size: 21,000 fuzz cases against POST /webhook and the 10,000-message soak
# (`make test` runs the same tests with about 600 cases and 2,000 messages).
fuzz: install
	WAGUARD_RELIABILITY=full $(BIN)/python -m pytest -n 2 --dist loadgroup tests/reliability

# Security checks on what deploys: cfn-lint and checkov on the synthesized template, bandit on the runtime
# code, pip-audit on the pinned dependencies. Each must report zero findings. The tools live in their own
# venv (their dependencies conflict with the project's). Where PyPI's per-version JSON API is reachable,
# `make audit PIP_AUDIT_FLAGS=--strict` also fails on a dependency pip-audit could not look up.
VENV_AUDIT := .venv-audit
AUDIT_BIN := $(VENV_AUDIT)/bin
AUDIT_STAMP := $(VENV_AUDIT)/.installed
TEMPLATE := cdk.out/Waguard.template.json
PIP_AUDIT_FLAGS ?=

$(AUDIT_STAMP): requirements-audit.txt
	@test -x $(AUDIT_BIN)/python || $(PYTHON) -m venv $(VENV_AUDIT)
	$(AUDIT_BIN)/python -m pip install --quiet -r requirements-audit.txt
	@touch $(AUDIT_STAMP)

audit: synth $(AUDIT_STAMP)
	$(AUDIT_BIN)/cfn-lint $(TEMPLATE)
	$(AUDIT_BIN)/checkov --config-file .checkov.yaml --file $(TEMPLATE)
	$(AUDIT_BIN)/bandit -q -c bandit.yaml -r lambdas
	$(AUDIT_BIN)/pip-audit --requirement constraints.txt --no-deps --disable-pip --progress-spinner off $(PIP_AUDIT_FLAGS)

# The data-protection report (docs/security-review.md explains how to read it).
report: install synth
	$(BIN)/waguard report --format html --out cdk.out/report.html
	$(BIN)/waguard report --format md --out cdk.out/report.md

# Debian's chromium and chromium-driver for the console's browser tests (skipped with a message without
# them); installs nothing when present or when apt-get is unavailable. CI runs it before `make test`.
browser:
	.ci/install-chromium

# docs/console-requests.png (the README's screenshot): the requests page as the browser test renders it.
console-screenshot: install browser
	WAGUARD_SCREENSHOT=docs/console-requests.png $(BIN)/python -m pytest -q -n 0 \
		tests/scenario/test_scenario_console_browser.py -k queue

clean:
	rm -rf cdk.out .pytest_cache .coverage bench/results.json
