PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install run serve test test-postgres test-worker lint format lock clean screenshots

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

clean:
	rm -rf $(VENV) var .pytest_cache
