"""Settings for benchmarks/load_rating.py: production settings (from the environment) with the
rating page's per-rater submit limit lifted, because a benchmark rater submits in milliseconds
what a person submits in half a minute. Nothing else differs."""

from evalhub.settings import *  # noqa: F403

EVALHUB_RATING_SUBMITS_PER_MINUTE = 10**9
