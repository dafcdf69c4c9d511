# RiskRadar: `make run` starts the whole platform, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PORT ?= 8000
HOST ?= 127.0.0.1
# pytest-xdist workers for `make test`: one per core by default (what CI runs; about half the time of one process),
# TEST_WORKERS=0 for one process (a debugger, or -x stopping at the first failure in order).
TEST_WORKERS ?= auto
# honcho hands each process its own PORT, so the web server reads WEB_PORT.
WEB_PORT := $(PORT)
WEB_HOST := $(HOST)
export PORT HOST WEB_PORT WEB_HOST

.PHONY: run test lint check install install-dev clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate requirements/base.txt
	$(PY) -m pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements/dev.txt
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: install, migrate, seed the demo on an empty database, then start redis (unless REDIS_URL), web, worker and feed
run: $(VENV)/.installed
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py collectstatic --no-input -v 0
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py run_banner
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start $(if $(REDIS_URL),web worker feed,)

## test: the whole suite (SQLite and in-memory channel layer unless DATABASE_URL / REDIS_URL are set)
test: $(VENV)/.installed-dev
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) $(PYTEST_ARGS)

## lint: ruff, Django's checks and missing migrations
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
