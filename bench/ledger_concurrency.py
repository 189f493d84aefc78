"""Credits ledger throughput on one workspace under contention, against raw SQL.

Eight threads run hold + settle pairs (the credits path of one AI request) on ONE workspace,
through the ledger services (the ORM: conditional update() + create() in atomic(), decision
070), and then the same work as the fewest statements PostgreSQL allows — one hand-written
data-modifying CTE per operation on a bare psycopg connection — against the same tables
(same indexes, constraints and trigger). The raw side is a floor to read the ORM against,
not code the project runs. Rounds alternate so
drift hits both sides alike; the medians are compared. Then an overspend check: many
threads hold against a balance that covers only a few holds.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/ledger_concurrency.py

The script creates (and at the end drops) its own database, byok_ledger_bench (or
BENCH_DATABASE_NAME), on the server of DATABASE_URL. Commits are durable (synchronous_commit
is left on).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("BENCH_DATABASE_NAME", "byok_ledger_bench")
HOLD = 500  # credits held per request
USED = 137  # credits the request really used

# The floor: each operation as ONE autocommitted statement that moves the balance
# (conditionally, for a hold) and appends the entry.
RAW_APPEND = """
WITH account AS (
    UPDATE credits_creditaccount SET balance = balance + %(delta)s
    WHERE workspace_id = %(ws)s {cover} RETURNING balance
)
INSERT INTO credits_creditentry
    (workspace_id, kind, amount, balance_after, charged, written_off, idempotency_key,
     hold_id, reason, created_at)
SELECT %(ws)s, %(kind)s, %(delta)s, account.balance, %(charged)s, 0, %(key)s, %(hold)s, '',
       now()
FROM account RETURNING id
"""
RAW_HOLD = RAW_APPEND.format(cover="AND balance + %(delta)s >= 0")
RAW_SETTLE = RAW_APPEND.format(cover="")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(url: str) -> str:
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    return with_database(url, BENCH_DB)


def drop_database(url: str) -> None:
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def setup_django(bench_url: str) -> None:
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def new_workspace(slug: str, balance: int):
    from credits.services import credits_grant
    from workspaces.models import Workspace

    workspace = Workspace.objects.create(name=slug, slug=slug)
    credits_grant(workspace=workspace, amount=balance, reason="Benchmark")
    return workspace


# --- one request, two ways --------------------------------------------------------------


def ledger_request(workspace) -> None:
    from credits.services import credits_hold, credits_settle

    hold = credits_hold(workspace=workspace, amount=HOLD, idempotency_key=uuid.uuid4().hex)
    credits_settle(hold=hold, amount=USED)


class RawClient:
    """The ledger's two operations as hand-written SQL on one autocommit connection."""

    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=True)

    def request(self, workspace_id: int) -> None:
        params = {"ws": workspace_id, "kind": "hold", "delta": -HOLD, "charged": 0, "hold": None}
        row = self.conn.execute(RAW_HOLD, {**params, "key": uuid.uuid4().hex}).fetchone()
        if row is None:
            raise RuntimeError("insufficient credits")
        settle = {**params, "kind": "settle", "delta": HOLD - USED, "charged": USED}
        self.conn.execute(RAW_SETTLE, {**settle, "key": f"settle:{row[0]}", "hold": row[0]})

    def close(self) -> None:
        self.conn.close()


# --- runners ------------------------------------------------------------------------------


def run_threads(threads: int, seconds: float, make_worker) -> int:
    """Run ``threads`` workers for ``seconds``; return how many requests completed."""
    stop = threading.Event()
    barrier = threading.Barrier(threads + 1)
    counts = [0] * threads
    errors: list[BaseException] = []

    def target(i: int) -> None:
        work, close = make_worker()
        try:
            work()  # warm the connection before the clock starts
            barrier.wait()
            while not stop.is_set():
                work()
                counts[i] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below, the bench must not hang
            errors.append(exc)
            barrier.abort()
        finally:
            close()

    pool = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    time.sleep(seconds)
    stop.set()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return sum(counts)


def ledger_worker_factory(workspace):
    def make():
        from django.db import connections

        return (lambda: ledger_request(workspace)), connections.close_all

    return make


def raw_worker_factory(url: str, workspace_id: int):
    def make():
        client = RawClient(url)
        return (lambda: client.request(workspace_id)), client.close

    return make


def sequential_latency_ms(ledger_work, raw_work, n: int) -> tuple[float, float]:
    """Median ms of one hold + settle, ledger and raw alternating so load hits both alike."""
    ledger, raw = [], []
    ledger_work()
    raw_work()
    for _ in range(n):
        start = time.perf_counter()
        ledger_work()
        middle = time.perf_counter()
        raw_work()
        end = time.perf_counter()
        ledger.append((middle - start) * 1000)
        raw.append((end - middle) * 1000)
    return statistics.median(ledger), statistics.median(raw)


def overspend_check(threads: int, attempts_per_thread: int, covered: int) -> tuple[int, int, int]:
    """Many threads hold against a balance covering ``covered`` holds; return the figures."""
    from django.db import connections
    from django.db.models import Sum

    from credits.exceptions import InsufficientCreditsError
    from credits.models import CreditEntry, EntryKind
    from credits.selectors import credits_balance
    from credits.services import credits_hold

    workspace = new_workspace("overspend", covered * HOLD)
    barrier = threading.Barrier(threads)
    refused = [0] * threads

    def target(i: int) -> None:
        barrier.wait()
        try:
            for _ in range(attempts_per_thread):
                try:
                    credits_hold(workspace=workspace, amount=HOLD, idempotency_key=uuid.uuid4().hex)
                except InsufficientCreditsError:
                    refused[i] += 1
        finally:
            connections.close_all()

    pool = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    holds = CreditEntry.objects.filter(workspace=workspace, kind=EntryKind.HOLD).count()
    balance = credits_balance(workspace=workspace)
    total = CreditEntry.objects.filter(workspace=workspace).aggregate(s=Sum("amount"))["s"]
    if balance != total:
        raise SystemExit(f"FAIL: balance {balance} != sum of entries {total}")
    return holds, sum(refused), balance


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side, interleaved")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must point at a PostgreSQL server (postgres://...).", file=sys.stderr)
        return 2
    bench_url = recreate_database(url)
    try:
        setup_django(bench_url)
        from django.db import connection
        from django.db.models import Sum

        from credits.models import CreditEntry
        from credits.selectors import credits_balance

        big = 10**15
        ledger_ws = new_workspace("ledger", big)
        raw_ws = new_workspace("raw", big)
        connection.close()

        ledger_rates, raw_rates = [], []
        for _ in range(args.rounds):
            done = run_threads(args.threads, args.seconds, ledger_worker_factory(ledger_ws))
            ledger_rates.append(done / args.seconds)
            done = run_threads(args.threads, args.seconds, raw_worker_factory(bench_url, raw_ws.pk))
            raw_rates.append(done / args.seconds)

        raw_client = RawClient(bench_url)
        ledger_ms, raw_ms = sequential_latency_ms(
            lambda: ledger_request(ledger_ws), lambda: raw_client.request(raw_ws.pk), 500
        )
        # The same without waiting for the WAL flush: what remains is the time each side
        # spends in Python and on the wire, which is what the ledger code can change.
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
        raw_client.conn.execute("SET synchronous_commit = off")
        ledger_cpu_ms, raw_cpu_ms = sequential_latency_ms(
            lambda: ledger_request(ledger_ws), lambda: raw_client.request(raw_ws.pk), 1000
        )
        raw_client.close()
        connection.close()

        for workspace in (ledger_ws, raw_ws):
            balance = credits_balance(workspace=workspace)
            total = CreditEntry.objects.filter(workspace=workspace).aggregate(s=Sum("amount"))["s"]
            if balance != total or balance < 0:
                print(f"FAIL: {workspace.slug}: balance {balance} vs entries {total}")
                return 1

        ledger = statistics.median(ledger_rates)
        raw = statistics.median(raw_rates)
        ratio = ledger / raw
        print(
            f"PostgreSQL {connection.pg_version // 10000}, one workspace, {args.threads} threads,"
        )
        print(f"{args.rounds} interleaved rounds of {args.seconds:g} s each; durable commits.")
        print("Requests/s = hold + settle pairs per second (raw: 2 autocommitted statements)")
        print(f"  ledger services : {ledger:8.0f} req/s  rounds {[round(r) for r in ledger_rates]}")
        print(f"  raw psycopg SQL : {raw:8.0f} req/s  rounds {[round(r) for r in raw_rates]}")
        print(f"  ratio ledger/raw: {ratio:8.0%}   (target >= 50%)")
        print("Sequential hold + settle, one thread, ledger and raw alternating (median):")
        print(f"  durable commits   : ledger {ledger_ms:6.3f} ms, raw {raw_ms:6.3f} ms")
        print(
            f"  synchronous_commit=off: ledger {ledger_cpu_ms:6.3f} ms, raw {raw_cpu_ms:6.3f} ms"
            f"  -> the ledger code adds {ledger_cpu_ms - raw_cpu_ms:+.3f} ms per request"
        )

        covered, threads, attempts = 10, 50, 4
        holds, refused, balance = overspend_check(threads, attempts, covered)
        overspend = holds > covered or balance < 0
        print(
            f"Overspend check: {threads} threads x {attempts} holds against a balance for "
            f"{covered}: {holds} held, {refused} refused, balance {balance} -> "
            f"{'OVERSPENT' if overspend else 'zero overspend'}"
        )
        connection.close()
        return 1 if overspend or ratio < 0.5 else 0
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    sys.exit(main())
