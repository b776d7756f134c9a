"""Which database the live-server tests use: the one the suite runs on (the SQLite leg or the
PostgreSQL leg), each test in a database of its own so that they never meet the suite's."""

import os

from benchmarks.load_server import LoadConfig


def live_config(name: str, **kwargs) -> LoadConfig:
    on_postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    return LoadConfig(
        db="postgres" if on_postgres else "sqlite",
        database_name=f"evalhub_{name}_{os.getpid()}",
        **kwargs,
    )
