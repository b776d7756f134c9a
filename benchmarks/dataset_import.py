"""How fast do reading, linting and splitting go, and how much memory do they take?

    .venv/bin/python benchmarks/dataset_import.py [--sizes 10000,50000]

Writes synthetic chat datasets (random words, ~330 characters per example, 2% exact and 2%
near duplicates) as JSON Lines and as one minified JSON array, then times three stages in a fresh
subprocess each, so peak memory (VmHWM) belongs to that stage alone:
  read     DatasetReader only (streaming parse and normalisation)
  prepare  prepare_dataset: read + hashes + MinHash near duplicates + split + lint
No database: the service adds one bulk insert on top.
"""

import argparse
import json
import random
import string
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STAGE = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from trainer.datasets import DatasetReader, prepare_dataset
start = time.perf_counter()
if {stage!r} == "read":
    count = sum(1 for _ in DatasetReader({path!r}))
    issues = None
else:
    prepared = prepare_dataset({path!r})
    count, issues = len(prepared.examples), {{}}
    for issue in prepared.issues:
        issues[issue.code] = issues.get(issue.code, 0) + 1
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
status = open("/proc/self/status").read().split("VmHWM:")[1]
peak = int(status.split()[0]) / 1024
print(json.dumps({{"examples": count, "seconds": seconds, "peak_mb": peak, "issues": issues}}))
"""


def words(rng: random.Random, count: int) -> str:
    return " ".join(
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(count)
    )


def records(size: int) -> list[dict]:
    rng = random.Random(size)
    out = []
    for _ in range(size):
        roll = rng.random()
        if out and roll < 0.02:
            out.append(rng.choice(out))  # exact duplicate
            continue
        if out and roll < 0.04:
            near = json.loads(json.dumps(rng.choice(out)))
            near["messages"][1]["content"] += " indeed"  # near duplicate
            out.append(near)
            continue
        out.append(
            {
                "messages": [
                    {"role": "user", "content": words(rng, 14).capitalize() + "?"},
                    {"role": "assistant", "content": words(rng, 40).capitalize() + "."},
                ]
            }
        )
    return out


def stage(name: str, path: Path) -> dict:
    code = STAGE.format(root=str(ROOT), stage=name, path=str(path))
    return json.loads(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            data = records(size)
            jsonl = Path(folder) / f"{size}.jsonl"
            jsonl.write_text("".join(json.dumps(r) + "\n" for r in data))
            array = Path(folder) / f"{size}.json"
            array.write_text(json.dumps(data))
            del data
            megabytes = jsonl.stat().st_size / 2**20
            for path in (jsonl, array):
                for name in ("read", "prepare"):
                    result = stage(name, path)
                    seconds, peak = result["seconds"], result["peak_mb"]
                    rate = result["examples"] / seconds
                    issues = f"  issues {result['issues']}" if result["issues"] else ""
                    print(
                        f"{size:>7} examples {megabytes:6.1f} MB {path.suffix:6} {name:8} "
                        f"{seconds:7.2f} s {rate:9.0f} ex/s  peak {peak:6.0f} MB{issues}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
