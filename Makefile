PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install run serve test test-postgres test-worker lint format lock clean screenshots claude-code \
	anthropic-sdk-ts

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	touch $@

install: $(VENV)/.installed

.env: | install
	$(BIN)/python scripts/dev_env.py

run: install .env
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py demo_setup
	PORT=$(PORT) $(BIN)/python scripts/run_dev.py

# The production web server alone (no worker, beat or migrations), configured from the
# environment only: gunicorn with WEB_CONCURRENCY uvicorn workers on config.asgi (README).
serve: install
	PORT=$(PORT) $(BIN)/python scripts/serve.py

test: install
	$(BIN)/pytest

test-postgres: install
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/byok} $(BIN)/pytest

# A real Celery worker process on Redis and PostgreSQL checks stored keys (tests/worker).
test-worker: install
	BYOK_WORKER_TEST=1 \
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/byok_worker} \
	WORKER_TEST_BROKER_URL=$${WORKER_TEST_BROKER_URL:-redis://127.0.0.1:6379/5} \
	timeout 300 $(BIN)/pytest tests/worker

# Every page and state at 1280 and 390 px, against the stand-in (needs Chromium).
screenshots: install
	$(BIN)/python scripts/screenshots.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin every dependency after editing pyproject.toml.
lock: install
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

# Claude Code from npm, for the suite's headless runs against the served app
# (tests/served_app/test_claude_code_served.py). Installed once into var/ (cached). npm may
# block the package's install script, so it is run by hand: install.cjs copies the native
# binary from the platform's optional dependency, which npm has already fetched.
CLAUDE_CODE_VERSION ?= 2.1.332
CLAUDE_CODE_DIR := var/claude-code
CLAUDE_CODE_PACKAGE := $(CLAUDE_CODE_DIR)/node_modules/@anthropic-ai/claude-code

$(CLAUDE_CODE_DIR)/.installed-$(CLAUDE_CODE_VERSION):
	mkdir -p $(CLAUDE_CODE_DIR)
	npm install --no-audit --no-fund --ignore-scripts --prefix $(CLAUDE_CODE_DIR) \
		@anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)
	cd $(CLAUDE_CODE_PACKAGE) && node install.cjs
	$(CLAUDE_CODE_DIR)/node_modules/.bin/claude --version
	touch $@

claude-code: $(CLAUDE_CODE_DIR)/.installed-$(CLAUDE_CODE_VERSION)

# The official TypeScript SDK from npm, for the suite's node client
# (tests/served_app/test_typescript_sdk_served.py). Installed once into var/ (cached).
ANTHROPIC_SDK_TS_VERSION ?= 1.16.0
ANTHROPIC_SDK_TS_DIR := var/anthropic-sdk-ts

$(ANTHROPIC_SDK_TS_DIR)/.installed-$(ANTHROPIC_SDK_TS_VERSION):
	mkdir -p $(ANTHROPIC_SDK_TS_DIR)
	npm install --no-audit --no-fund --ignore-scripts --prefix $(ANTHROPIC_SDK_TS_DIR) \
		@anthropic-ai/sdk@$(ANTHROPIC_SDK_TS_VERSION)
	touch $@

anthropic-sdk-ts: $(ANTHROPIC_SDK_TS_DIR)/.installed-$(ANTHROPIC_SDK_TS_VERSION)

clean:
	rm -rf $(VENV) var .pytest_cache
