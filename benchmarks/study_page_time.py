"""Time the manager's study page and its "Verdict details" card on a study of 500 judgments.

    .venv/bin/python benchmarks/study_page_time.py [--prompts 250] [--raters 2] [--repeats 10]

Builds a throwaway SQLite database as ``review_queue_time`` does (one comparison per prompt,
every rater judging every one with random sides and verdicts), then times the whole page (GET
as a manager, test client): ``page_first_ms`` with the cache emptied before each view (the
form check's too), ``page_ms`` as reloads find it, and ``card_ms`` the card's read and
statistics (``verdict_details_block``) alone, uncached. Writes
benchmarks/results/study_page_time.json.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recognisability_time import setup_django, timed
from review_queue_time import generate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "study_page_time.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=250)
    parser.add_argument("--raters", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="evalhub-study-page-")
    os.environ["ALLOWED_HOSTS"] = "localhost"
    try:
        setup_django(data_dir)
        from django.contrib.auth import get_user_model
        from django.core.cache import cache
        from django.test import Client
        from django.urls import reverse

        from evalhub.models import Study
        from evalhub.selectors.verdict_details import verdict_details_block

        study = Study.objects.get(pk=generate(args.prompts, args.raters))
        manager = get_user_model().objects.create(username="manager", is_staff=True)
        client = Client(HTTP_HOST="localhost")
        client.force_login(manager)
        url = reverse("study_detail", args=[study.pk])
        assert client.get(url, secure=True).status_code == 200
        page_ms = timed(lambda: client.get(url, secure=True), args.repeats)
        page_first_ms = timed(lambda: cache.clear() or client.get(url, secure=True), args.repeats)
        card_ms = timed(lambda: cache.clear() or verdict_details_block(study=study), args.repeats)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    result = {
        "prompts": args.prompts,
        "raters": args.raters,
        "judgments": args.prompts * args.raters,
        "repeats": args.repeats,
        "page_ms": page_ms,
        "page_first_ms": page_first_ms,
        "card_ms": card_ms,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
        },
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
