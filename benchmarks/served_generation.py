"""Throughput of served generation (``generate --endpoint``) at a few concurrencies, through the
same client and thread pool that the command uses (``evalhub.chat_client``); nothing is stored.

Point it at any OpenAI-compatible server that lists MODEL, for example llama-cpp-python's:

    .venv/bin/python -m llama_cpp.server --model GGUF --model_alias smollm2 --port 8765 &
    .venv/bin/python benchmarks/served_generation.py --endpoint http://127.0.0.1:8765/v1 \
        --model smollm2 [--prompts 16] [--max-tokens 64] [--concurrency 1,4] [--out DIR]

or at a vLLM server on a GPU (``--model`` the LoRA module's name). Greedy, every prompt asked
once per concurrency. Writes served_generation.json and .md (with lscpu) under --out.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalhub.chat_client import CallError, Endpoint, chats_in_flight, served_models

TOPICS = ["tea", "rivers", "bicycles", "volcanoes", "libraries", "owls", "bridges", "bread"]


def prompts(count: int) -> list[list[dict[str, str]]]:
    asks = [
        "Explain in a few sentences what makes {} interesting.",
        "Write a short paragraph about {}.",
    ]
    return [
        [{"role": "user", "content": asks[i % 2].format(TOPICS[i % len(TOPICS)])}]
        for i in range(count)
    ]


def measure(endpoint: Endpoint, conversations: list, max_tokens: int, concurrency: int) -> dict:
    asked = chats_in_flight(
        endpoint,
        conversations,
        lambda messages: messages,
        concurrency=concurrency,
        max_tokens=max_tokens,
        temperature=0.0,
    )
    started = time.perf_counter()
    replies = [reply for _, reply in asked]
    seconds = time.perf_counter() - started
    errors = [str(r) for r in replies if isinstance(r, CallError)]
    tokens = sum(r.completion_tokens for r in replies if not isinstance(r, CallError))
    return {
        "concurrency": concurrency,
        "prompts": len(conversations),
        "errors": errors,
        "completion_tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "prompts_per_s": round(len(conversations) / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--api-key-env", default="")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    key = os.environ.get(args.api_key_env, "") if args.api_key_env else ""
    endpoint = Endpoint(args.endpoint, args.model, api_key=key, timeout_s=600)
    with httpx.Client() as client:
        listed = [m["id"] for m in served_models(client, endpoint)]
    if args.model not in listed:
        sys.exit(f"{args.endpoint} does not list {args.model!r}: {listed}")
    conversations = prompts(args.prompts)
    measure(endpoint, conversations[:1], 8, 1)  # warm-up: load, first-call costs
    rows = [
        measure(endpoint, conversations, args.max_tokens, int(c))
        for c in args.concurrency.split(",")
    ]
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    result = {
        "endpoint": endpoint.public_url,
        "model": args.model,
        "max_tokens": args.max_tokens,
        "machine": platform.platform(),
        "lscpu": cpu,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "served_generation.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Served generation: {args.model} at {endpoint.public_url}",
        "",
        f"{args.prompts} prompts, up to {args.max_tokens} tokens each, greedy; "
        f"`python benchmarks/served_generation.py {' '.join(sys.argv[1:])}` as committed.",
        "",
        "| concurrency | seconds | completion tokens/s | prompts/s | errors |",
        "|---|---|---|---|---|",
        *(
            f"| {r['concurrency']} | {r['seconds']} | {r['tokens_per_s']} | "
            f"{r['prompts_per_s']} | {len(r['errors'])} |"
            for r in rows
        ),
        "",
        "```",
        cpu.strip(),
        "```",
    ]
    (args.out / "served_generation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:-4]))


if __name__ == "__main__":
    main()
