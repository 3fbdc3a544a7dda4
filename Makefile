# The two commands: `make run` (the demo on 127.0.0.1:8000) and `make test`. Both set up everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test fuzz install messages lint format demo-data schema clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Translations are compiled in the build, never committed.
messages: install
	$(PY) manage.py compilemessages -v0 --ignore=.venv

# The demo: SQLite, tasks in-process, whatever DATABASE_URL/REDIS_URL the shell has. Celery beat runs
# beside the server: without a broker it runs each periodic task itself (eagerly), so offers expire,
# live swaps are re-checked, time off's housekeeping and the nightly sync run as in production. It
# stops with the server (Ctrl-C, or the server killed).
run: messages
	env -u DATABASE_URL -u REDIS_URL $(PY) manage.py migrate --noinput -v0
	env -u DATABASE_URL -u REDIS_URL $(PY) manage.py seed_demo
	@echo "Log in: admin at http://$(HOST):$(PORT)/admin/, API docs at http://$(HOST):$(PORT)/api/docs/"
	env -u DATABASE_URL -u REDIS_URL $(VENV)/bin/celery -A em_agent beat -l warning --pidfile= & BEAT=$$!; \
	trap 'kill $$BEAT 2>/dev/null' EXIT INT TERM; \
	env -u DATABASE_URL -u REDIS_URL $(PY) manage.py runserver --noreload $(HOST):$(PORT)

test: messages
	$(PY) -m pytest $(PYTEST_ARGS)

# The contract fuzz's longer profile (CI runs it bounded, inside `make test`); EM_FUZZ_SEED picks another seed.
fuzz: messages
	EM_FUZZ_EXAMPLES=$${EM_FUZZ_EXAMPLES:-200} EM_FUZZ_STATEFUL_STEPS=$${EM_FUZZ_STATEFUL_STEPS:-150} \
		$(PY) -m pytest -q -p no:cacheprovider tests/contract $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy em_agent activation schedules timeoff swaps notifications sync

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

schema: install
	$(PY) manage.py spectacular --validate --fail-on-warn --file schema.yaml

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
