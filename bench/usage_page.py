"""The usage page and its CSV export at scale, on PostgreSQL.

Seeds 1,000,000 AI requests and 2,000,000 ledger entries over 200 workspaces (COPY), one of
them busy: 100,000 requests and 200,000 ledger entries in the measured month (and as many in
each of the two months before). Then, in this process through Django's test client:

- the usage page of the busy workspace for that month, as its admin and as one member:
  p50 / p95 of repeated GETs and the number of SQL queries of one page, first reading the
  requests themselves, then after the closed days are summed into AIUsageDay (decision 079);
- the CSV export of the month (100,000 rows): time, rows per second, and the growth of this
  process's resident memory while the whole response streams;
- the plans of the page's queries on the period (which index each reads).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/usage_page.py [--rounds 20] [--keep]

The script creates its own database, byok_usage_bench, on the server of DATABASE_URL and
drops it at the end (``--keep`` leaves it, and a later run with ``--reuse`` skips the seed).
Targets (issue 12): page p50 <= 300 ms, export memory growth <= 50 MB, queries per page
constant in the number of rows.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "byok_usage_bench"
WORKSPACES = 200
REQUESTS = 1_000_000
ENTRIES = 2_000_000
BUSY_REQUESTS_PER_MONTH = 100_000
MONTHS = (datetime.date(2026, 9, 1), datetime.date(2026, 10, 1), datetime.date(2026, 11, 1))
MEASURED = ("2026-11-01", "2026-11-30")
BUSY_MEMBERS = 25
OTHER_MEMBERS = 4
MODELS = ("claude-sonnet-5", "claude-haiku-4-5", "claude-opus-5", "claude-haiku-5-5", "x-custom")
UTC = datetime.UTC


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def recreate_database(url: str) -> None:
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def drop_database(url: str) -> None:
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def setup_django(bench_url: str, *, migrate: bool) -> None:
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def _month_seconds(month: datetime.date) -> tuple[datetime.datetime, int]:
    start = datetime.datetime.combine(month, datetime.time.min, tzinfo=UTC)
    following = (month + datetime.timedelta(days=32)).replace(day=1)
    return start, (following - month).days * 86_400


def _times(rng: random.Random, count: int) -> list[datetime.datetime]:
    """``count`` moments spread evenly over the three months, in order."""
    per_month = [count // len(MONTHS)] * len(MONTHS)
    per_month[-1] += count - sum(per_month)
    moments = []
    for month, n in zip(MONTHS, per_month, strict=True):
        start, seconds = _month_seconds(month)
        offsets = sorted(rng.randrange(seconds * 1000) for _ in range(n))
        moments.extend(start + datetime.timedelta(milliseconds=o) for o in offsets)
    return moments


def _copy(conn: psycopg.Connection, table: str, columns: str, lines) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for n, line in enumerate(lines, 1):
            buffer.write(line)
            if n % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def seed(bench_url: str) -> dict:
    """Write the rows with COPY (foreign-key triggers off for the load); return the busy ids."""
    from django.contrib.auth.hashers import make_password

    rng = random.Random(12)
    password = make_password("bench-password")
    now = datetime.datetime(2026, 8, 1, tzinfo=UTC).isoformat()
    members: dict[int, list[int]] = {}
    user_id = 0
    started = time.perf_counter()
    with psycopg.connect(bench_url) as conn:
        conn.execute("SET session_replication_role = replica")
        ws_lines, user_lines, member_lines = [], [], []
        for ws in range(1, WORKSPACES + 1):
            ws_lines.append(f"{ws}\tWorkspace {ws}\tws-{ws}\t{now}\n")
            members[ws] = []
            for n in range(BUSY_MEMBERS if ws == 1 else OTHER_MEMBERS):
                user_id += 1
                members[ws].append(user_id)
                email = f"u{user_id}@bench.example"
                user_lines.append(
                    f"{user_id}\t{password}\t\\N\t{'t' if user_id == 1 else 'f'}\t{email}\t"
                    f"\t\t{email}\t{'t' if user_id == 1 else 'f'}\tt\t{now}\n"
                )
                role = "admin" if n == 0 else "member"
                member_lines.append(f"{user_id}\t{ws}\t{user_id}\t{role}\t{now}\n")
        _copy(conn, "workspaces_workspace", "id, name, slug, created_at", ws_lines)
        _copy(
            conn,
            "auth_user",
            "id, password, last_login, is_superuser, username, first_name, last_name, email,"
            " is_staff, is_active, date_joined",
            user_lines,
        )
        _copy(
            conn,
            "workspaces_membership",
            "id, workspace_id, user_id, role, created_at",
            member_lines,
        )

        # AI requests: the busy workspace has BUSY_REQUESTS_PER_MONTH in each month.
        busy_total = BUSY_REQUESTS_PER_MONTH * len(MONTHS)
        per_other = (REQUESTS - busy_total) // (WORKSPACES - 1)
        counts = {1: busy_total, **{ws: per_other for ws in range(2, WORKSPACES + 1)}}
        counts[WORKSPACES] += REQUESTS - sum(counts.values())

        # Rows are written in time order across workspaces, as the gateway writes them.
        request_rows = sorted(
            (moment, ws) for ws, count in counts.items() for moment in _times(rng, count)
        )

        def request_lines():
            for moment, ws in request_rows:
                byok = rng.random() < 0.3
                ok = rng.random() < 0.97
                tin, tout = (rng.randrange(50, 4000), rng.randrange(10, 1500)) if ok else (0, 0)
                credits = 0 if byok or not ok else (tin * 3 + tout * 15) // 100 + 1
                yield (
                    f"{ws}\t{rng.choice(members[ws])}\tanthropic\t{rng.choice(MODELS)}\t"
                    f"{'byok' if byok else 'platform'}\t{'ok' if ok else 'provider_error'}"
                    f"\t\t\t{tin}\t{tout}\t0\t0\t{credits}\t{rng.randrange(200, 4000)}\t\tf"
                    f"\t{moment.isoformat()}\n"
                )

        _copy(
            conn,
            "ai_gateway_airequest",
            "workspace_id, user_id, provider, model, credential_source, outcome, error_type,"
            " provider_error_type, input_tokens, output_tokens, cache_read_input_tokens,"
            " cache_creation_input_tokens, credits_charged, latency_ms, provider_request_id,"
            " stream, created_at",
            request_lines(),
        )

        # Ledger: a grant per workspace, then hold + settle (or release) pairs; the busy
        # workspace's pairs are 2 x BUSY_REQUESTS_PER_MONTH entries per month.
        busy_pairs = BUSY_REQUESTS_PER_MONTH * len(MONTHS)
        other_pairs = (ENTRIES - WORKSPACES - 2 * busy_pairs) // 2 // (WORKSPACES - 1)
        pairs = {1: busy_pairs, **{ws: other_pairs for ws in range(2, WORKSPACES + 1)}}
        pairs[WORKSPACES] += (ENTRIES - WORKSPACES - 2 * sum(pairs.values())) // 2
        balances: dict[int, int] = {}
        entry_id = 0

        pair_rows = sorted(
            (moment, ws) for ws, count in pairs.items() for moment in _times(rng, count)
        )

        def entry_lines():
            nonlocal entry_id
            grant_at = f"{MONTHS[0].isoformat()}T00:00:00+00:00"
            for ws in pairs:
                balances[ws] = 10**12
                entry_id += 1
                yield (
                    f"{entry_id}\t{ws}\tgrant\t{balances[ws]}\t{balances[ws]}\t0\t0"
                    f"\tgrant:{entry_id}\t\\N\t\\N\tBench allowance\t\\N\t{grant_at}\n"
                )
            for moment, ws in pair_rows:
                held = rng.randrange(500, 5000)
                balances[ws] -= held
                entry_id += 1
                hold_id = entry_id
                yield (
                    f"{hold_id}\t{ws}\thold\t{-held}\t{balances[ws]}\t0\t0\th:{hold_id}"
                    f"\t\\N\t\\N\t\t\\N\t{moment.isoformat()}\n"
                )
                entry_id += 1
                closed = (moment + datetime.timedelta(seconds=2)).isoformat()
                if rng.random() < 0.03:
                    balances[ws] += held
                    yield (
                        f"{entry_id}\t{ws}\trelease\t{held}\t{balances[ws]}\t0\t0"
                        f"\tr:{hold_id}\t{hold_id}\t\\N\t\t\\N\t{closed}\n"
                    )
                else:
                    charged = rng.randrange(1, held)
                    balances[ws] += held - charged
                    yield (
                        f"{entry_id}\t{ws}\tsettle\t{held - charged}\t{balances[ws]}"
                        f"\t{charged}\t0\tsettle:{hold_id}\t{hold_id}\t\\N\t\t\\N\t{closed}\n"
                    )

        _copy(
            conn,
            "credits_creditentry",
            "id, workspace_id, kind, amount, balance_after, charged, written_off,"
            " idempotency_key, hold_id, settlement_id, reason, actor_id, created_at",
            entry_lines(),
        )
        _copy(
            conn,
            "credits_creditaccount",
            "workspace_id, balance",
            (f"{ws}\t{balance}\n" for ws, balance in balances.items()),
        )
        for table in (
            "workspaces_workspace",
            "auth_user",
            "workspaces_membership",
            "ai_gateway_airequest",
            "credits_creditentry",
        ):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()
    with psycopg.connect(bench_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    seconds = time.perf_counter() - started
    with psycopg.connect(bench_url) as conn:
        rows = conn.execute("SELECT count(*) FROM ai_gateway_airequest").fetchone()[0]
        entries = conn.execute("SELECT count(*) FROM credits_creditentry").fetchone()[0]
    print(
        f"seeded {rows:,} AI requests and {entries:,} ledger entries over {WORKSPACES} "
        f"workspaces in {seconds:.0f} s"
    )
    return {"admin": members[1][0], "member": members[1][1]}


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_page(client, url: str, rounds: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        assert client.get(url).status_code == 200
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], len(queries)


def measure_export(client, url: str) -> tuple[int, float, float]:
    import gc

    gc.collect()
    before = peak = rss_bytes()
    started = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200 and response.streaming
    lines = 0
    for n, chunk in enumerate(response.streaming_content):
        lines += chunk.count(b"\n")
        if n % 20 == 0:
            peak = max(peak, rss_bytes())
    peak = max(peak, rss_bytes())
    seconds = time.perf_counter() - started
    return lines - 1, seconds, (peak - before) / 2**20


def explain_period_queries(workspace_id: int) -> None:
    """Print which index each of the page's period queries reads."""
    from django.db import connection
    from django.db.models import Count

    from ai_gateway.periods import Period
    from ai_gateway.usage_selectors import ai_requests_in_period
    from credits.ledger_lines import credit_ledger_line_entries
    from workspaces.models import Workspace

    workspace = Workspace.objects.get(pk=workspace_id)
    first, last = (datetime.date.fromisoformat(day) for day in MEASURED)
    period = Period(first, last)
    requests = ai_requests_in_period(workspace=workspace, period=period)
    lines = credit_ledger_line_entries(workspace=workspace, start=period.start, end=period.end)
    queries = {
        "grouped figures": requests.order_by().values("model").annotate(n=Count("id")),
        "requests page": requests.order_by("-created_at", "-id")[:50],
        "ledger lines page": lines[:25],
        "ledger lines count": lines.order_by().values("id"),
    }
    for name, queryset in queries.items():
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = [row[0] for row in cursor.fetchall()]
        used = sorted({word for line in plan for word in line.split() if word.endswith("_idx")})
        print(f"  {name:20} reads {', '.join(used) or 'no index: ' + plan[0].strip()}")


def build_usage_days() -> None:
    from django.db import connection

    from ai_gateway.models import AIUsageDay
    from ai_gateway.usage_days import ai_usage_days_build

    started = time.perf_counter()
    days = ai_usage_days_build(
        through=datetime.date(2026, 11, 30), today=datetime.date(2026, 12, 1)
    )
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ai_gateway_aiusageday")
    print(
        f"  built {days} closed days into {AIUsageDay.objects.count():,} AIUsageDay rows "
        f"in {seconds:.1f} s ({seconds / days * 1000:.0f} ms a day, all workspaces)"
    )


def measure_roles(users, people, url: str, rounds: int, label: str) -> None:
    from django.test import Client

    for role in ("admin", "member"):
        client = Client()
        client.force_login(users.get(pk=people[role]))
        p50, p95, queries = measure_page(client, url, rounds)
        print(
            f"  {label:13} as {role:6}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
            f"({rounds} GETs, {queries} SQL queries per page)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="leave the database for --reuse")
    parser.add_argument("--reuse", action="store_true", help="use the seeded database as is")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    bench_url = with_database(base, BENCH_DB)
    if not args.reuse:
        recreate_database(base)
    try:
        setup_django(bench_url, migrate=not args.reuse)
        people = {"admin": 1, "member": 2} if args.reuse else seed(bench_url)
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.test import Client

        settings.ALLOWED_HOSTS = ["*"]
        assert not settings.DEBUG, "DEBUG keeps every query in memory: run with it off"
        period = f"?from={MEASURED[0]}&to={MEASURED[1]}"
        users = get_user_model().objects
        url = f"/w/ws-1/usage/{period}"
        print(
            f"usage page of ws-1 for {MEASURED[0]}..{MEASURED[1]} "
            f"({BUSY_REQUESTS_PER_MONTH:,} requests, {2 * BUSY_REQUESTS_PER_MONTH:,} "
            "ledger entries in the period):"
        )
        if not args.reuse:
            measure_roles(users, people, url, args.rounds, "requests only")
            build_usage_days()
        measure_roles(users, people, url, args.rounds, "summed days")
        client = Client()
        client.force_login(users.get(pk=people["admin"]))
        rows, seconds, growth = measure_export(client, f"/w/ws-1/usage/export.csv{period}")
        print(
            f"CSV export: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s), "
            f"resident memory growth {growth:.1f} MB"
        )
        print("plans (EXPLAIN) of the period queries:")
        explain_period_queries(1)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(base)


if __name__ == "__main__":
    main()
