"""The rating load benchmark at a reduced size, against a live gunicorn on the suite's database:
every judgment the server acknowledged is stored exactly once, none without acknowledgment, and
no request failed. Latency is measured by benchmarks/load_rating.py, never asserted here."""

import pytest

from benchmarks.load_rating import run_load
from tests.hardening.live_server import live_config

# a live gunicorn on the suite's database: it runs on the PostgreSQL leg too
pytestmark = pytest.mark.database

RATERS, JUDGMENTS = 5, 100


def test_five_raters_submit_and_get_next_with_nothing_lost_or_doubled():
    config = live_config("load", raters=RATERS, judgments=JUDGMENTS, workers=2, threads=2)
    config.time_limit_s = 300
    result = run_load(config)
    assert not result["timed_out"]
    assert result["errors"] == 0, result["error_samples"]
    check = result["verify"]
    assert check["acknowledged"] >= JUDGMENTS
    assert check["acknowledged_twice"] == 0
    assert check["lost"] == 0
    assert check["stored_not_acknowledged"] == 0
    assert check["assignments_with_more_than_one"] == 0
    assert check["judgments_stored"] == check["acknowledged"]
    assert check["revisions"] == 0
    assert result["submit_and_next_ms"]["n"] == check["acknowledged"]
