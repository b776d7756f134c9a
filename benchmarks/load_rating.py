"""Load benchmark of blinded rating: concurrent experts "submit and get next" against gunicorn.

Each simulated expert opens their queue, then posts a judgment the way the rating page's htmx
form does; the answer is the next item's fragment. The latency of that one request is "submit
and get next". When the target is reached, every acknowledged judgment is looked up in the
database: exactly one judgment per acknowledged assignment, none lost, none duplicated, and no
judgment that was not acknowledged.

    python benchmarks/load_rating.py --db postgres --raters 50 --judgments 10000
    python benchmarks/load_rating.py --db sqlite --raters 1,2,4,8 --judgments 2000

Traffic goes to 127.0.0.1 only, and a run is bounded by --judgments and --time-limit. The
database is the script's own: PostgreSQL database ``evalhub_load`` on 127.0.0.1:5432 (created
and dropped) or a SQLite file in a temporary folder. Results go to benchmarks/results/.
The server runs the production settings (DEBUG off) through benchmarks/load_settings.py, which
only lifts the per-rater submit limit.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from benchmarks.load_server import (  # noqa: E402
    HOST,
    LoadConfig,
    database_version,
    free_port,
    prepared,
    start_server,
    stop_server,
    verify,
)

RESULTS = ROOT / "benchmarks" / "results"
CHOICES = ("a", "b", "tie", "both_bad")
MAX_FAILURES_IN_A_ROW = 5  # then this rater gives up: the run reports it, it does not spin


@dataclass
class RaterStats:
    latencies_ms: list[float] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # tokens
    errors: list[str] = field(default_factory=list)


# --- the client side: simulated experts ------------------------------------------------------


async def _rater(
    base: str,
    session: str,
    study: int,
    config: LoadConfig,
    deadline: float,
    shared: dict,
    seed: int,
) -> RaterStats:
    import httpx

    stats, rng = RaterStats(), random.Random(seed)
    target, failed_in_a_row = config.judgments, 0
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(
        base_url=base, cookies={"sessionid": session}, timeout=60, limits=limits
    ) as client:
        first = await client.get(f"/rate/study/{study}/next/")
        url = first.headers.get("location", "")
        if first.status_code != 302 or not url.startswith("/rate/"):
            stats.errors.append(f"queue: {first.status_code}")
            return stats
        page = await client.get(url)
        if page.status_code != 200:
            stats.errors.append(f"page: {page.status_code}")
            return stats
        csrf = client.cookies["csrftoken"]
        headers = {"HX-Request": "true", "X-CSRFToken": csrf, "Referer": base + url}
        while url and shared["acknowledged"] < target and time.monotonic() < deadline:
            token = url.rstrip("/").rsplit("/", 1)[-1]
            data = {
                "choice": rng.choice(CHOICES),
                "time_on_task_ms": str(rng.randint(3, 90) * 1000),
            }
            started = time.perf_counter()
            try:
                response = await client.post(url, data=data, headers=headers)
            except httpx.HTTPError as error:
                response, error_text = None, f"{type(error).__name__}: {error}"
            else:
                error_text = "" if response.status_code == 200 else f"{response.status_code}"
            if error_text:
                stats.errors.append(f"submit: {error_text}")
                failed_in_a_row += 1
                if failed_in_a_row >= MAX_FAILURES_IN_A_ROW:
                    break
                continue  # the same submit again: it is idempotent
            failed_in_a_row = 0
            stats.latencies_ms.append((time.perf_counter() - started) * 1000)
            stats.acknowledged.append(token)
            shared["acknowledged"] += 1
            url = response.headers.get("HX-Push-Url", "")  # absent: HX-Redirect, all done
            if config.think_s:  # reading the next pair, as a person would (exponential)
                await asyncio.sleep(rng.expovariate(1 / config.think_s))
    return stats


async def _raters(base: str, setup: dict, config: LoadConfig, deadline: float) -> list:
    shared = {"acknowledged": 0}
    return await asyncio.gather(
        *(
            _rater(base, session, setup["study"], config, deadline, shared, config.seed + n)
            for n, session in enumerate(setup["sessions"])
        )
    )


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 2)


def run_load(config: LoadConfig) -> dict:
    """Create the database and data, serve, drive the raters, verify, clean up."""
    started = time.monotonic()
    with prepared(config) as (env, setup):
        setup_s = time.monotonic() - started
        port = free_port()
        server = start_server(config, env, port)
        try:
            load_before = os.getloadavg()
            wall = time.perf_counter()
            deadline = time.monotonic() + config.time_limit_s
            base = f"http://{HOST}:{port}"
            per_rater = asyncio.run(_raters(base, setup, config, deadline))
            wall = time.perf_counter() - wall
            load_after = os.getloadavg()
        finally:
            stop_server(server)
        acknowledged = [t for s in per_rater for t in s.acknowledged]
        check = verify(env, setup["study"], acknowledged)
        latencies = [ms for s in per_rater for ms in s.latencies_ms]
        errors = [e for s in per_rater for e in s.errors]
        return {
            "config": asdict(config),
            "database": database_version(env),
            "setup_s": round(setup_s, 1),
            "assignments": setup["assignments"],
            "wall_s": round(wall, 2),
            "judgments_per_s": round(len(latencies) / wall, 1) if wall else None,
            "submit_and_next_ms": {
                "n": len(latencies),
                "p50": _percentile(latencies, 50),
                "p95": _percentile(latencies, 95),
                "p99": _percentile(latencies, 99),
                "max": round(max(latencies), 2) if latencies else None,
                "mean": round(statistics.fmean(latencies), 2) if latencies else None,
            },
            "errors": len(errors),
            "error_samples": sorted(set(errors))[:10],
            "verify": check,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "timed_out": time.monotonic() > deadline,
        }


def machine() -> dict:
    def sh(command: str) -> str:
        done = subprocess.run(command, shell=True, capture_output=True, text=True)
        return done.stdout.strip()

    import django
    import gunicorn
    import httpx

    return {
        "lscpu": sh("lscpu | head -20"),
        "nproc": os.cpu_count(),
        "memory": sh("free -m | head -2"),
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        "httpx": httpx.__version__,
        "kernel": platform.release(),
        "busiest_processes": sh("ps -eo pcpu,etime,args --sort=-pcpu | head -8 | cut -c1-160"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--raters", default="50", help="a number, or several: 1,2,4,8")
    parser.add_argument("--judgments", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds per run")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a rater reads before the next submit (0: submit at once)",
    )
    parser.add_argument("--out", type=Path, help="JSON results file (default: results/)")
    args = parser.parse_args()
    runs = []
    info = machine()
    for raters in [int(n) for n in args.raters.split(",")]:
        config = LoadConfig(
            db=args.db,
            raters=raters,
            judgments=args.judgments,
            workers=args.workers,
            threads=args.threads,
            time_limit_s=args.time_limit,
            think_s=args.think,
        )
        result = run_load(config)
        runs.append(result)
        latency = result["submit_and_next_ms"]
        print(
            f"{args.db} {raters:3d} raters, think {args.think} s: "
            f"{latency['n']} judgments in {result['wall_s']} s "
            f"({result['judgments_per_s']}/s), p50 {latency['p50']} ms, p95 {latency['p95']} ms, "
            f"p99 {latency['p99']} ms, errors {result['errors']}, verify {result['verify']}",
            flush=True,
        )
    out = args.out or RESULTS / f"load_rating_{args.db}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "runs": runs}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
