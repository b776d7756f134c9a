"""Time `manage.py demo` from nothing: a fresh data directory, so the GGUF conversion, the
import, the QLoRA run, generation, scoring and the study are all measured.

    .venv/bin/python benchmarks/demo_time.py [--steps 32] [--runs 1]

Runs the demo with --no-serve (starting the server and the worker takes about a second and
is not part of the work), then a second time in the same directory to time the reuse. Writes
benchmarks/results/demo.json: the demo's own per-phase table (wall and CPU seconds), the total
wall time, how many base and adapter outputs follow the house format, mean ROUGE-L of each,
the machine (lscpu, load average before and after) and the library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASE = re.compile(r"^\s{2}(\S.*?)\s+(\d+) s\s+(\d+) CPU s$")
OUTCOME = """
import json
from evalhub.models import Output
from trainer.models import FineTuneRun
from evalhub.selectors.outputs import run_systems
from evalhub.services.demo_expert import house_format
run = FineTuneRun.objects.filter(status="succeeded").latest("pk")
result = {"run": run.pk, "steps": run.step, "best_val_loss": run.best_val_loss,
          "train_wall_seconds": run.wall_seconds}
for kind, system in run_systems(run=run).items():
    outputs = list(Output.objects.filter(system=system))
    rouge = [o.metrics["rougeL"] for o in outputs if "rougeL" in o.metrics]
    result[kind] = {
        "outputs": len(outputs),
        "house_format": sum(house_format(o.text) for o in outputs),
        "rougeL_mean": round(sum(rouge) / len(rouge), 4) if rouge else None,
        "example": outputs[0].text if outputs else None,
    }
print(json.dumps(result))
"""


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()[:15]
    return {"lscpu": lscpu, "load_average": os.getloadavg(), "cpu_count": os.cpu_count()}


def versions() -> dict:
    from importlib.metadata import version

    names = ("torch", "transformers", "peft", "bitsandbytes", "django", "django-tasks-db")
    return {name: version(name) for name in names}


def run_demo(env: dict, steps: int) -> dict:
    started = time.monotonic()
    before = machine()["load_average"]
    command = [sys.executable, "manage.py", "demo", "--no-serve", "--steps", str(steps)]
    process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if process.returncode:
        raise SystemExit(f"demo failed ({process.returncode}):\n{process.stderr[-4000:]}")
    phases = {}
    for line in process.stdout.splitlines():
        if match := PHASE.match(line):
            phases[match[1]] = {"wall_s": int(match[2]), "cpu_s": int(match[3])}
    return {
        "wall_seconds": round(wall, 1),
        "phases": phases,
        "load_average_before": before,
        "load_average_after": os.getloadavg(),
        "stdout_tail": process.stdout.splitlines()[-16:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/demo.json")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="evalhub-demo-bench-"))
    # The default settings and a fresh SQLite database, as on a new machine.
    env = {**os.environ, "EVALHUB_DATA_DIR": str(data_dir)}
    for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    first = run_demo(env, args.steps)
    print(json.dumps(first["phases"]), flush=True)
    second = run_demo(env, args.steps)
    outcome = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", OUTCOME],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = {
        "benchmark": "benchmarks/demo_time.py",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "steps": args.steps,
        "first_demo": first,
        "second_demo": second,
        "outcome": json.loads(outcome.stdout.strip().splitlines()[-1]),
        "machine": machine(),
        "versions": versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: result[k] for k in ("outcome",)}, indent=2))


if __name__ == "__main__":
    main()
