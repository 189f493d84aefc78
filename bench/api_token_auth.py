"""How long ``api_token_authenticate`` takes: the one read every token request makes.

Creates a workspace and a token in the database named by DATABASE_URL (created and migrated
if missing), then times, over many calls on one connection:

- a call within the minute of the last use (the read alone: the common case);
- a call after the minute has passed (the read plus the conditional last-used write);
- a refused token (a wrong secret with a real prefix: the read, and the hash comparison).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/byok_tokens_bench \\
        .venv/bin/python bench/api_token_auth.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")


def _ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _timed(fn, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        _ensure_database(url)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from api_tokens.models import ApiToken
    from api_tokens.services import Actor, api_token_authenticate, api_token_create
    from workspaces.models import Workspace

    workspace, _ = Workspace.objects.get_or_create(slug="bench-tokens", defaults={"name": "B"})
    ApiToken.objects.filter(workspace=workspace).delete()
    raw = api_token_create(workspace=workspace, name="bench", actor=Actor(label="bench")).raw_token
    wrong = raw[:-4] + ("AAAA" if raw[-4:] != "AAAA" else "BBBB")
    api_token_authenticate(raw_token=raw)

    def stale_then_authenticate():
        ApiToken.objects.filter(workspace=workspace).update(
            last_used_at=timezone.now() - timedelta(minutes=2)
        )
        start = time.perf_counter()
        api_token_authenticate(raw_token=raw)
        return (time.perf_counter() - start) * 1000

    baseline = statistics.median(
        _timed(lambda: Workspace.objects.filter(pk=workspace.pk).first(), args.calls)
    )
    print(
        f"database: {connection.vendor} {connection.settings_dict['NAME']}; "
        f"{args.calls} calls each; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'baseline: one-row ORM read of a workspace':38} median {baseline:.3f} ms")
    rows = [
        (
            "live token, used within the minute",
            _timed(lambda: api_token_authenticate(raw_token=raw), args.calls),
        ),
        (
            "live token, last use > 1 min ago",
            [stale_then_authenticate() for _ in range(args.calls // 4)],
        ),
        (
            "wrong secret, real prefix",
            _timed(lambda: api_token_authenticate(raw_token=wrong), args.calls),
        ),
    ]
    for label, times in rows:
        times.sort()
        print(
            f"{label:38} median {statistics.median(times):.3f} ms, "
            f"p99 {times[int(len(times) * 0.99) - 1]:.3f} ms"
        )
    ApiToken.objects.filter(workspace=workspace).delete()
    print("Rerun: DATABASE_URL=postgres://…/NAME .venv/bin/python bench/api_token_auth.py")


if __name__ == "__main__":
    main()
