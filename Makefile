# Two commands: `make run` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format migrate seed bench reliability reliability-ci clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	GATEWAY_DEMO_PROVIDER=$${GATEWAY_DEMO_PROVIDER:-1} DEBUG=$${DEBUG:-1} \
		$(BIN)/uvicorn gateway_project.asgi:application --host 127.0.0.1 --port 8000

# The suite uses only the Redis database it is handed in GATEWAY_TEST_REDIS_URL (it empties it);
# without one, the tests that need Redis are skipped.
test: $(STAMP)
	REDIS_URL=$${GATEWAY_TEST_REDIS_URL:-} $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/vulture

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	bash bench/run.sh

# The fault matrix on a private Redis and PostgreSQL (bench/reliability/README.md).
reliability: $(STAMP)
	bash bench/reliability/run.sh $(RELIABILITY_ARGS)

reliability-ci: $(STAMP)
	bash bench/reliability/run.sh --ci $(RELIABILITY_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .demo-key
