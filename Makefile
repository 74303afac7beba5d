# The two commands a newcomer needs:  make demo  (local pipeline on sample-data)  and  make test  (what CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(CURDIR)/.jsii-cache
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := 1

.PHONY: demo test install lint typecheck unit e2e infra synth cdk-synth cfn-lint bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt layers/deps/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed

## demo: install, start the local runtime and run sample-data through the pipeline
demo: install
	$(BIN)/medscribe local run sample-data

## test: everything CI runs (lint, types, every test tier, synth with the pinned CDK CLI, cfn-lint)
test: install node_modules/.installed lint typecheck
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory cdk-synth cfn-lint

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy layers/medscribe/python/medscribe app.py stacks
	for handler in lambdas/*/handler.py; do $(BIN)/mypy $$handler || exit 1; done

unit: install
	$(BIN)/pytest -q tests/unit tests/adapters tests/handlers

e2e: install
	$(BIN)/pytest -q tests/e2e

infra: install
	$(BIN)/pytest -q tests/infra

synth: install
	$(BIN)/python app.py

cdk-synth: install node_modules/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth --no-notices -q > /dev/null

cfn-lint: install
	$(BIN)/cfn-lint cdk.out/*.template.json

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/transcript.py
	$(BIN)/python bench/notes.py

clean:
	rm -rf cdk.out .medscribe .pytest_cache .mypy_cache .ruff_cache
