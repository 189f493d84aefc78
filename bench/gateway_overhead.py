"""What the served gateway adds to a non-streamed AI request, in wall time and in CPU.

Against the asyncio stand-in of Anthropic (bench/async_standin.py, its own process, answering
after ``--latency`` seconds), each round makes one direct SDK call (a reused client,
``with_options(api_key=...)``) and one request through the production server (``make serve``
where the Makefile has it, else the README's gunicorn command; ``--serve-command`` to
choose) on PostgreSQL, interleaved so drift hits both alike:

- ``POST /api/v1/w/<slug>/messages``, session cookie + CSRF header from a real login,
  keep-alive: BYOK and AI credits; with ``--litellm``, LiteLLM's ``/v1/messages`` on the same
  stand-in in the same run;
- for each: wall time added over the direct call (median of the gateway's minus median of
  the direct calls', and the median of paired differences), failing above 10 ms; and the CPU
  the server's whole process tree (from /proc) spent per request;
- TCP connections the stand-in accepted for 1,000 requests over 100 BYOK workspaces from 32
  client connections (must stay <= AI_HTTP_POOL_SIZE per server process).

Every usage row and ledger entry is committed durably (synchronous_commit as the server has
it, printed below):

    .venv/bin/python bench/gateway_overhead.py --litellm
    .venv/bin/python bench/gateway_overhead.py --litellm --latency 0.5 --rounds 60

The database (``--database-url``, default byok_bench_gateway) is dropped, created and
migrated by each run.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchlib  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/byok_bench_gateway"
MESSAGES = [{"role": "user", "content": "Reply with one short sentence."}]
MAX_TOKENS = 64
BUDGET_MS = 10.0  # issue 10: more than 10 ms of wall time over a direct SDK call fails


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _interleave(rounds: int, direct, through) -> tuple[list[float], list[float]]:
    direct_times, through_times = [], []
    clock = time.perf_counter
    for index in range(rounds):
        # Alternate which goes first so neither always runs on a warmer cache.
        pair = (direct, through) if index % 2 == 0 else (through, direct)
        for fn in pair:
            start = clock()
            fn()
            elapsed = clock() - start
            (direct_times if fn is direct else through_times).append(elapsed)
    return direct_times, through_times


class _Client:
    """One keep-alive connection to a server, posting the same Messages body."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.path = path
        self.headers = headers
        self.body = json.dumps(
            {"model": benchlib.MODEL, "max_tokens": MAX_TOKENS, "messages": MESSAGES}
        )

    def __call__(self) -> None:
        self.conn.request("POST", self.path, self.body, self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status} from {self.path}: {data[:300]!r}")


def _setup(env: dict[str, str]):
    """Migrate; one user, a member of 100 BYOK workspaces and one with AI credits."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections

    from credits.services import credits_grant
    from llm_keys.services import Actor, llm_key_set
    from workspaces.services import membership_add, workspace_create

    call_command("migrate", verbosity=0)
    email = "bench@example.com"
    platform = workspace_create(
        slug="bench-credits",
        name="Bench credits",
        admin_email=email,
        admin_password=benchlib.PASSWORD,
    )
    user = get_user_model().objects.get(email=email)
    credits_grant(workspace=platform, amount=10**15, reason="gateway overhead bench")
    byok, keys = [], []
    for n in range(100):
        workspace = workspace_create(
            slug=f"bench-byok-{n}", name=f"Bench BYOK {n}", admin_email=f"owner-{n}@example.com"
        )
        membership_add(workspace=workspace, user=user)
        key = "sk-ant-api03-bench-" + os.urandom(12).hex()
        llm_key_set(workspace=workspace, raw_key=key, actor=Actor(label="bench"), check=False)
        byok.append(workspace.slug)
        keys.append(key)
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        sync_commit = cursor.fetchone()[0]
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    connections.close_all()
    return (
        email,
        platform.slug,
        byok,
        keys,
        f"PostgreSQL {version}, synchronous_commit={sync_commit}",
    )


def _standin_stats(url: str) -> dict:
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/_bench/stats")
    return json.loads(conn.getresponse().read())


def _measure(label: str, server: benchlib.Served, direct, through, args) -> dict:
    _interleave(args.warmup, direct, through)
    before = server.tree()
    direct_times, through_times = _interleave(args.rounds, direct, through)
    cpu = benchlib.cpu_between(before, server.tree())
    added = _median_ms(through_times) - _median_ms(direct_times)
    paired = (
        statistics.median(t - d for d, t in zip(direct_times, through_times, strict=True)) * 1000
    )
    verdict = "met" if added <= BUDGET_MS else "FAILED"
    print(
        f"  {label:<22} direct {_median_ms(direct_times):8.3f} ms  through "
        f"{_median_ms(through_times):8.3f} ms  added {added:7.3f} ms (paired {paired:7.3f}; "
        f"<= {BUDGET_MS:.0f} ms: {verdict})  server CPU {1000 * cpu / args.rounds:6.2f} ms/request"
    )
    return {"label": label, "added_ms": added, "cpu_ms": 1000 * cpu / args.rounds}


def _connections(server: benchlib.Served, standin_url: str, byok: list[str], headers) -> None:
    """1,000 BYOK requests over 100 workspaces from 32 connections; stand-in connections."""
    from django.conf import settings

    before = _standin_stats(standin_url)["connections"]
    counter = iter(range(1000))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        client = _Client(server.port, "", headers)
        try:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                client.path = f"/api/v1/w/{byok[n % len(byok)]}/messages"
                client()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = _standin_stats(standin_url)["connections"] - before
    pool = settings.AI_HTTP_POOL_SIZE
    processes = int(os.environ.get("WEB_CONCURRENCY", "1"))
    print(
        f"Connections: 1,000 requests over 100 BYOK workspaces from 32 client threads -> "
        f"{accepted} new TCP connections to the stand-in ({processes} server process(es), pool "
        f"size {pool} each): {'met' if accepted <= pool * processes else 'MISSED'}"
        + (f"; {len(errors)} errors: {errors[0]!r}" if errors else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds the stand-in takes to answer"
    )
    parser.add_argument("--litellm", action="store_true", help="also through a LiteLLM proxy")
    parser.add_argument(
        "--serve-command",
        default=None,
        help="shell command serving the project on $PORT with $WEB_CONCURRENCY processes "
        "(default: make serve where the Makefile has it, else the README's gunicorn command)",
    )
    parser.add_argument("--web-concurrency", type=int, default=1)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("--database-url must be a PostgreSQL URL (the bench creates the database).")
    serve_command = args.serve_command or benchlib.default_serve_command()

    benchlib.ensure_database(args.database_url, fresh=True)
    standin = benchlib.StandinProcess(latency=args.latency)
    env = benchlib.server_environment(standin_url=standin.url, database_url=args.database_url)
    env["WEB_CONCURRENCY"] = str(args.web_concurrency)
    servers: list[benchlib.Served] = []
    try:
        email, platform, byok, keys, database = _setup(env)
        project = benchlib.Served(
            "the project's server",
            serve_command,
            env=env,
            health="/healthz",
            log=benchlib.VAR / "bench-gateway-server.log",
        )
        servers.append(project)
        headers = asyncio.run(benchlib.log_in(project.url, email))

        import anthropic

        sdk = anthropic.Anthropic(base_url=standin.url, api_key="unused", max_retries=0)

        def direct(key: str):
            client = sdk.with_options(api_key=key)

            def call() -> None:
                client.messages.create(
                    model=benchlib.MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS
                )

            return call

        load = os.getloadavg()
        print(
            f"{database}; stand-in {standin.url} (own process, latency {args.latency:g} s); "
            f"model {benchlib.MODEL}; {args.rounds} interleaved rounds; load average "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} before the run (a shared machine)"
        )
        print(
            f"This project: {serve_command} (WEB_CONCURRENCY={args.web_concurrency}), "
            "session + CSRF, keep-alive:"
        )
        busy_before = benchlib.machine_busy()
        results = [
            _measure(
                "BYOK",
                project,
                direct(keys[0]),
                _Client(project.port, f"/api/v1/w/{byok[0]}/messages", headers),
                args,
            ),
            _measure(
                "AI credits",
                project,
                direct(benchlib.PLATFORM_KEY),
                _Client(project.port, f"/api/v1/w/{platform}/messages", headers),
                args,
            ),
        ]
        if args.litellm:
            command = benchlib.litellm_command(standin_url=standin.url)
            litellm = benchlib.Served(
                "LiteLLM",
                command,
                env=benchlib.LITELLM_ENV,
                health="/health/liveliness",
                log=benchlib.VAR / "bench-gateway-litellm.log",
            )
            servers.append(litellm)
            print(f"LiteLLM {benchlib.litellm_version()} proxy, 2 uvicorn workers, /v1/messages:")
            litellm_headers = {
                "Content-Type": "application/json",
                "x-api-key": benchlib.LITELLM_MASTER_KEY,
                "anthropic-version": "2023-06-01",
            }
            results.append(
                _measure(
                    "LiteLLM",
                    litellm,
                    direct(benchlib.PLATFORM_KEY),
                    _Client(litellm.port, "/v1/messages", litellm_headers),
                    args,
                )
            )
            for result in results[:2]:
                ratio = result["cpu_ms"] / results[2]["cpu_ms"]
                print(
                    f"  CPU per request, {result['label']} / LiteLLM: {ratio:.2f} "
                    f"({'below' if ratio < 1 else 'NOT below'} LiteLLM's)"
                )
        busy_after = benchlib.machine_busy()
        print(
            "Machine busy during the timed part: "
            f"{100 * (busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1]):.0f} %"
        )
        _connections(project, standin.url, byok, headers)
    finally:
        for server in servers:
            server.stop()
        standin.stop()


if __name__ == "__main__":
    main()
