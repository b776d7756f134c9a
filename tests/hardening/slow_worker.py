"""``manage.py db_worker`` with the output work slowed down, so that a test can kill it half-way.

    python -m tests.hardening.slow_worker --queue-name gpu ...   (db_worker's own options)

EVALHUB_SLOW_STORE_S: seconds to wait after each stored batch of generated outputs.
EVALHUB_SLOW_SCORE_S: seconds to wait once the scores are computed (``scoring.computed`` is then
written to EVALHUB_SLOW_MARKS), before they are stored.
Nothing else changes: the same task, services, model and encoder run as in production.
"""

import os
import sys
import time
from pathlib import Path

import django


def _slow_down() -> None:
    from evalhub.services import outputs, scores

    store_delay = float(os.environ.get("EVALHUB_SLOW_STORE_S", "0"))
    score_delay = float(os.environ.get("EVALHUB_SLOW_SCORE_S", "0"))
    marks = Path(os.environ.get("EVALHUB_SLOW_MARKS", "."))
    store, score_pairs = outputs.outputs_store, scores.score_pairs

    def slow_store(**kwargs):
        stored = store(**kwargs)
        time.sleep(store_delay)
        return stored

    def slow_score_pairs(*args, **kwargs):
        scores = score_pairs(*args, **kwargs)
        (marks / "scoring.computed").touch()
        time.sleep(score_delay)
        return scores

    # Module globals: _batch_storer and outputs_score look these names up at each call.
    outputs.outputs_store = slow_store
    scores.score_pairs = slow_score_pairs


def main() -> None:
    django.setup()
    _slow_down()
    from django.core.management import call_command

    call_command("db_worker", *sys.argv[1:])


if __name__ == "__main__":
    main()
