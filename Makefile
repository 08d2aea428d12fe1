# auth0-sync: the two commands are `make demo` and `make test`; each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One virtualenv, two stamps: `make demo` installs what the demo and the CLI need
# (requirements.txt); `make test`, `synth`, `deploy` add the CDK app and the test tools.
DEMO_STAMP := $(VENV)/.installed-demo
DEV_STAMP := $(VENV)/.installed-dev
MUTATION_STAMP := $(VENV)/.installed-mutation
# The Lambda asset's pins (without their hashes, which pip would enforce on everything) keep
# the CLI and the tests on the very versions Lambda runs.
CONSTRAINTS := $(VENV)/lambda-constraints.txt
# The CDK's jsii runtime needs Node 22 LTS or newer (older ones print a banner and will fail):
# `make synth`/`deploy`/`destroy`/`bootstrap` say so in one line when `node` is older.
NODE_MIN := 22
NODE_MAJOR := $(shell node --version 2>/dev/null | sed -n 's/^v\([0-9][0-9]*\).*/\1/p')
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-demo lint test demo synth deploy destroy bootstrap check-node lock bench pictures mutation clean

install: $(DEV_STAMP)
install-demo: $(DEMO_STAMP)

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	touch $@

$(CONSTRAINTS): functions/requirements.lock $(VENV)/.created
	sed -n 's/^\([A-Za-z0-9][^ ]*==[^ ]*\).*/\1/p' $< > $@

$(DEMO_STAMP): $(VENV)/.created $(CONSTRAINTS) requirements.txt functions/requirements.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt -c $(CONSTRAINTS)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(DEV_STAMP): $(DEMO_STAMP) requirements-cdk.txt requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt -c $(CONSTRAINTS)
	touch $@

$(MUTATION_STAMP): $(DEV_STAMP) requirements-mutation.txt
	$(BIN)/pip install --quiet -r requirements-mutation.txt -c $(CONSTRAINTS)
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The tests run the CDK in-process: jsii's banner about an old Node stays out of their logs
# (set for pytest only; `make synth`/`deploy` show it, with check-node's one-line note).
# Two pytest workers per core, at most 8: much of a test's time is waiting (servers on
# loopback, subprocesses, retries), so one per core leaves the cores idle (measured:
# load 1.4 of 2 with one per core). TEST_WORKERS=0 runs them in this process, e.g. to debug.
# Each worker synthesizes the stack contexts its tests need (tests/infra/conftest.py caches
# them per process). Keeping every synth test on one worker (xdist_group + --dist loadgroup)
# was measured slower (tests/infra alone, 4 workers: 116 s grouped, 104 s not), and it does
# nothing under pytest 9.2 anyway (pytest-xdist issue 1386: groups silently ignored).
TEST_WORKERS ?= $(shell n=$$(( $$(nproc) * 2 )); [ $$n -gt 8 ] && n=8; echo $$n)
test: lint
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=$(NODE_MAJOR) $(BIN)/pytest -n $(TEST_WORKERS) --dist load

demo: install-demo
	$(BIN)/auth0-sync demo

check-node:
	@if [ -n "$(NODE_MAJOR)" ] && [ "$(NODE_MAJOR)" -lt $(NODE_MIN) ]; then \
	  echo "auth0-sync: note: Node $(NODE_MAJOR) is older than the CDK supports; install Node $(NODE_MIN) LTS or newer (https://nodejs.org/)" >&2; \
	fi

# CDK_ARGS: the stack's context, e.g. CDK_ARGS="-c auth0EventSourceName=... -c createEventBus=true".
# Telemetry off; deploy and destroy ask nothing (they run without a terminal, e.g. in CI).
synth: install node_modules/.installed check-node
	AUTH0_SYNC_DEPLOY=0 CDK_DISABLE_CLI_TELEMETRY=true npx cdk synth --no-notices --quiet $(CDK_ARGS)

deploy: install node_modules/.installed check-node
	AUTH0_SYNC_DEPLOY=1 CDK_DISABLE_CLI_TELEMETRY=true npx cdk deploy --no-notices --require-approval never $(CDK_ARGS)

destroy: install node_modules/.installed check-node
	AUTH0_SYNC_DEPLOY=0 CDK_DISABLE_CLI_TELEMETRY=true npx cdk destroy --no-notices --force $(CDK_ARGS)

# Once per account and region: `make bootstrap` (the account and region of your credentials)
# or `make bootstrap BOOTSTRAP_ENV=aws://<account>/<region>`. The CDK CLI runs the app for a
# bootstrap too, with your credentials' account set: AUTH0_SYNC_DEPLOY=0 tells it this is no
# deploy, so it does not refuse the placeholder event source you have not got yet.
bootstrap: install node_modules/.installed check-node
	AUTH0_SYNC_DEPLOY=0 CDK_DISABLE_CLI_TELEMETRY=true npx cdk bootstrap --no-notices $(BOOTSTRAP_ENV) $(CDK_ARGS)

# Pin every wheel of the Lambda asset (with hashes) after editing functions/requirements.txt.
lock: install
	$(BIN)/python -m infra.lock

bench: install
	$(BIN)/python -m bench

# The PNGs in docs/ and the README, drawn again from docs/pictures/ (offline; not in `make test`,
# whose unit tests draw each on a small input; the dashboard's graphs come from a demo run of
# 60 users, a minute or two). Run after `make bench` for its charts.
pictures: install
	$(BIN)/python -m docs.pictures

# Mutation testing of the core modules (not part of `make test`; long, so niced): writes a
# score per module and the surviving mutants to docs/mutation.md. MODULES="ownership sync"
# runs some modules only (the others keep their last results); results are kept in
# .mutation/ between runs. See docs/mutation/__main__.py.
mutation: $(MUTATION_STAMP)
	nice -n 15 $(BIN)/python -m docs.mutation $(MODULES)

clean:
	rm -rf .mutation $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
