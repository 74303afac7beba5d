# The two commands a newcomer needs:  make demo  (local pipeline on sample-data)  and  make test  (what CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(CURDIR)/.jsii-cache
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := 1

.PHONY: demo test install lint typecheck unit e2e infra synth cdk-synth cfn-lint security bandit pip-audit checkov bench clean

# Security tools live in their own virtualenvs, installed from complete locks with --no-deps:
# checkov's pins conflict with ours, and none of them may change .venv. pip keeps no cache for them.
SECURITY_VENV := .venv-security
CHECKOV_VENV := .venv-checkov
TOOL_PIP := --quiet --no-cache-dir --disable-pip-version-check --no-deps

$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-diarization.txt layers/deps/requirements.txt layers/workspace/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(SECURITY_VENV)/.installed: .ci/requirements-security.txt
	test -x $(SECURITY_VENV)/bin/python || $(PYTHON) -m venv $(SECURITY_VENV)
	$(SECURITY_VENV)/bin/python -m pip install $(TOOL_PIP) -r .ci/requirements-security.txt
	touch $@

$(CHECKOV_VENV)/.installed: .ci/requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install $(TOOL_PIP) -r .ci/requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed

## demo: install, start the local runtime and run sample-data through the pipeline
demo: install
	$(BIN)/medscribe demo

## test: everything CI runs (lint, types, every test tier, synth with the pinned CDK CLI, cfn-lint, security)
test: install node_modules/.installed lint typecheck
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory cdk-synth cfn-lint security

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy layers/medscribe/python/medscribe layers/local/medscribe_local app.py stacks
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

## security: bandit on our code, pip-audit on the pinned requirements, checkov on the synthesized template
security: bandit pip-audit checkov

# XDG_CACHE_HOME: the tools' caches (bandit's plugin index, checkov's) stay in their venvs, not in ~/.cache.
bandit: $(SECURITY_VENV)/.installed
	XDG_CACHE_HOME=$(CURDIR)/$(SECURITY_VENV)/cache $(SECURITY_VENV)/bin/bandit -q -c pyproject.toml -r layers/medscribe/python layers/local lambdas stacks app.py

# MEDSCRIBE_REQUIRE_AUDIT=1 fails when the advisory data cannot be reached (by default: a warning).
pip-audit: $(SECURITY_VENV)/.installed install
	XDG_CACHE_HOME=$(CURDIR)/$(SECURITY_VENV)/cache \
	  $(SECURITY_VENV)/bin/python .ci/audit_requirements.py --cache-dir $(SECURITY_VENV)/cache/pip-audit \
	  --installed "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
	  requirements.txt requirements-dev.txt layers/*/requirements.txt

# checkov skips its update check and platform downloads: it needs no network.
checkov: $(CHECKOV_VENV)/.installed cdk-synth
	XDG_CACHE_HOME=$(CURDIR)/$(CHECKOV_VENV)/cache CKV_SKIP_PACKAGE_UPDATE_CHECK=true \
	  $(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -f cdk.out/*.template.json

## bench: every benchmark; each prints its figures and the command that reproduces them (README "Benchmarks")
bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/transcript.py
	$(BIN)/python bench/audio_memory.py
	$(BIN)/python bench/notes.py
	$(BIN)/python bench/notes.py --aci
	$(BIN)/python bench/coldstart.py
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/cost.py
	$(BIN)/python bench/package_size.py
	$(BIN)/python bench/claims.py
	$(BIN)/python bench/redaction.py
	$(BIN)/python bench/diarization.py
	$(BIN)/python bench/entities.py

clean:
	rm -rf cdk.out .medscribe .pytest_cache .mypy_cache .ruff_cache
