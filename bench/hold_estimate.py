"""How long the hold estimate takes, how close it is, and what count_tokens would cost instead.

For each request of the credit-test corpus (tests/credits/corpus.py: text, CJK, code, tools,
images of every format and size, PDFs, text documents, cache writes with both TTLs, thinking)
it prints:

- the in-process estimate (``credits.pricing.estimate_request_input_tokens``) and its median
  time over many runs;
- ``POST /v1/messages/count_tokens`` for the same request and its median round-trip time;
- the estimate / count ratio (>= 1 means the hold is on the safe side), and the hold / charge
  ratio for Sonnet 5 (the credits held against what the answer's usage costs).

By default it asks a stand-in in its own process on loopback (so its latency is ~0, the
floor of what count_tokens can cost; the stand-in counts by Anthropic's published rules, not
the real tokenizer). To measure against Anthropic itself (count_tokens is free but rate
limited), give a real key and base URL:

    ANTHROPIC_API_KEY=sk-ant-... .venv/bin/python bench/hold_estimate.py --base-url https://api.anthropic.com

Run: .venv/bin/python bench/hold_estimate.py [--runs 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django  # noqa: E402

django.setup()

import anthropic  # noqa: E402

from credits.pricing import cost, estimate_request_input_tokens, get_price, hold_amount  # noqa: E402
from providers.anthropic import _usage_from_json  # noqa: E402
from tests.credits.corpus import CORPUS  # noqa: E402

MODEL = "claude-sonnet-5"
COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per request")
    parser.add_argument("--base-url", default=None, help="default: a local stand-in")
    parser.add_argument("--model", default=MODEL)
    args = parser.parse_args()

    child = None
    if args.base_url is None:
        port = _free_port()
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.anthropic_standin", "--port", str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        base_url, api_key = f"http://127.0.0.1:{port}", "sk-ant-api03-bench-hold-estimate-0000"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
    else:
        base_url, api_key = args.base_url, os.environ["ANTHROPIC_API_KEY"]
    try:
        client = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0)
        price = get_price(args.model)
        print(
            f"count_tokens at {base_url if child is None else 'a loopback stand-in'}; "
            f"{args.runs} timed runs per request; model {args.model}"
        )
        header = (
            f"{'request':30} {'estimate':>9} {'µs':>7} {'counted':>8} {'ms':>6} "
            f"{'est/cnt':>7} {'hold/charge':>11}"
        )
        print(header)
        print("-" * len(header))
        ratios, holds, est_times, count_times = [], [], [], []
        for name, request_body in CORPUS.items():
            body = {**request_body, "model": args.model}
            count_body = {k: v for k, v in body.items() if k in COUNT_FIELDS}
            estimate = estimate_request_input_tokens(body)
            est_ms = _median_ms(lambda body=body: estimate_request_input_tokens(body), args.runs)
            counted = client.messages.count_tokens(**count_body).input_tokens
            runs = args.runs if child is not None else 3
            count_ms = _median_ms(
                lambda count_body=count_body: client.messages.count_tokens(**count_body), runs
            )
            raw = client.messages.with_raw_response.create(**body).http_response.json()
            charge = cost(price, _usage_from_json(raw["usage"]))
            hold = hold_amount(price, body)
            ratios.append(estimate / counted)
            holds.append(hold / max(charge, 1))
            est_times.append(est_ms)
            count_times.append(count_ms)
            print(
                f"{name:30} {estimate:9,} {est_ms * 1000:7.1f} {counted:8,} {count_ms:6.2f} "
                f"{estimate / counted:7.2f} {hold / max(charge, 1):11.2f}"
            )
        print("-" * len(header))
        print(
            f"estimate: median {statistics.median(est_times) * 1000:.1f} µs, "
            f"max {max(est_times) * 1000:.1f} µs; count_tokens round trip: median "
            f"{statistics.median(count_times):.2f} ms"
        )
        print(
            f"estimate / count: min {min(ratios):.2f}, median {statistics.median(ratios):.2f}, "
            f"max {max(ratios):.2f}; hold / charge: min {min(holds):.2f}, "
            f"median {statistics.median(holds):.2f}, max {max(holds):.2f}"
        )
        print("Rerun: .venv/bin/python bench/hold_estimate.py")
    finally:
        if child is not None:
            child.terminate()
            child.wait(timeout=10)


if __name__ == "__main__":
    main()
