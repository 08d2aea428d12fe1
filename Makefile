# auth0-sync: the two commands are `make demo` and `make test`; each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install lint test demo synth deploy destroy lock bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt functions/requirements.txt functions/requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -c functions/requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

demo: install
	$(BIN)/auth0-sync demo

# CDK_ARGS: the stack's context, e.g. CDK_ARGS="-c auth0EventSourceName=... -c createEventBus=true".
# Telemetry off; deploy and destroy ask nothing (they run without a terminal, e.g. in CI).
synth: install node_modules/.installed
	AUTH0_SYNC_DEPLOY=0 CDK_DISABLE_CLI_TELEMETRY=true npx cdk synth --no-notices --quiet $(CDK_ARGS)

deploy: install node_modules/.installed
	AUTH0_SYNC_DEPLOY=1 CDK_DISABLE_CLI_TELEMETRY=true npx cdk deploy --no-notices --require-approval never $(CDK_ARGS)

destroy: install node_modules/.installed
	AUTH0_SYNC_DEPLOY=0 CDK_DISABLE_CLI_TELEMETRY=true npx cdk destroy --no-notices --force $(CDK_ARGS)

# Pin every wheel of the Lambda asset (with hashes) after editing functions/requirements.txt.
lock: install
	$(BIN)/python -m infra.lock

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
