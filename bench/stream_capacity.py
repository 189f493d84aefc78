"""How many streamed AI answers the served gateway holds at once, and what each costs.

An asyncio stand-in of Anthropic (bench/async_standin.py, its own process) streams
``--events`` text deltas over ``--seconds``. For each ``--clients`` C, C streaming requests
start evenly over ``--ramp`` seconds, through the production server (``make serve`` where the
Makefile has it, else the README's gunicorn command; ``--serve-command`` to choose) on
PostgreSQL, half to BYOK workspaces and half to AI-credits workspaces (``--mode``). After each
C the bench checks that every request's usage row and ledger entries are committed, and no
hold is left open. It prints, for each C: completed and failed (with reasons), p99 stream
duration / S, first-byte p50/p99, gateway CPU per stream and per relayed event (the server's
whole process tree, from /proc), peak PostgreSQL connections to the bench database, peak
memory of the server (PSS: a page its processes share counted once; RSS, which counts it in
every process, beside it), and the CPU the stand-in, the client and the rest of the
machine used meanwhile.

``--litellm`` runs the same workload, in the same run, through a LiteLLM proxy (2 uvicorn
workers, its Anthropic-compatible ``/v1/messages``) on the same stand-in, installed by the
bench into var/litellm-venv. ``--api token`` uses ``POST /anthropic/v1/messages`` with a
workspace API token (``create_api_token``) instead of the session API.

``--provider`` (with ``--api token``) names the providers whose endpoints carry the same
workload, one after the other on the same server and stand-in, compared in one table:
``anthropic`` (``/anthropic/v1/messages``), ``openai`` (``/openai/v1/chat/completions``,
streamed) and ``gemini`` (``/gemini/v1beta/models/{m}:streamGenerateContent?alt=sse``); the
stand-in streams each provider's own events.

    .venv/bin/python bench/stream_capacity.py --clients 100 500 --ramp 5 --litellm
    .venv/bin/python bench/stream_capacity.py --clients 200 --api token \
        --provider anthropic openai gemini

The database (``--database-url``, default byok_bench_stream) is dropped, created and
migrated by each run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchlib  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/byok_bench_stream"
PROVIDERS = ("anthropic", "openai", "gemini")
OPENAI_MODEL = "gpt-5-mini"
GEMINI_MODEL = "gemini-2.5-flash"
PLATFORM_OPENAI_KEY = "sk-proj-bench0platform0" + "0" * 24
PLATFORM_GEMINI_KEY = "AIza" + "BenchPlatform".ljust(35, "0")


@dataclass(frozen=True)
class Shape:
    """How one provider's stream reads: a mark once per text delta, the mark of its normal
    end, and marks of an error event (each provider's own, and the gateway's)."""

    delta: bytes
    stop: bytes
    errors: tuple[bytes, ...]
    end: bytes = b"\n\n"  # where one event ends (Google's: CRLF CRLF)


SHAPES = {
    # once per delta event, whatever the JSON spacing
    "anthropic": Shape(
        b'content_block_delta"', b"message_stop", (b'"type":"error"', b"event: error")
    ),
    "openai": Shape(b'"content":" word"', b"data: [DONE]", (b'{"error":', b"event: error")),
    "gemini": Shape(
        b'"text":" word"', b'"finishReason":"STOP"', (b'{"error":', b"event: error"), b"\r\n\r\n"
    ),
}


@dataclass
class Target:
    """Where a workload's requests go, and how each is authenticated."""

    name: str
    server: benchlib.Served
    path_for: list[str]
    headers_for: list[dict[str, str]]
    sources: list[str]
    polls_database: bool = True
    provider: str = "anthropic"


@dataclass
class Outcome:
    durations: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    events: int = 0
    failures: collections.Counter = field(default_factory=collections.Counter)
    completed_by_source: collections.Counter = field(default_factory=collections.Counter)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def _one_stream(session, target: Target, n: int, payload: bytes, args, outcome: Outcome):
    import aiohttp

    index = n % len(target.path_for)
    shape = SHAPES[target.provider]
    keep = max(len(mark) for mark in (shape.delta, shape.stop, *shape.errors)) - 1
    began = time.monotonic()
    first = None
    deltas = 0
    events = 0
    carry = b""
    stopped = errored = False
    try:
        async with session.post(
            target.server.url + target.path_for[index],
            data=payload,
            headers=target.headers_for[index],
        ) as response:
            if response.status != 200:
                body = await response.read()
                try:
                    kind = json.loads(body)["error"]["type"]
                except (ValueError, KeyError, TypeError):
                    kind = body[:60].decode(errors="replace")
                outcome.failures[f"HTTP {response.status} {kind}"] += 1
                return
            async for chunk in response.content.iter_any():
                if first is None:
                    first = time.monotonic() - began
                buffer = carry + chunk
                # Only the new bytes' marks: the carry is kept to find one cut in two.
                deltas += buffer.count(shape.delta) - carry.count(shape.delta)
                events += (carry[-(len(shape.end) - 1) :] + chunk).count(shape.end)
                stopped = stopped or shape.stop in buffer
                errored = errored or any(mark in buffer for mark in shape.errors)
                carry = buffer[-keep:]
    except TimeoutError:
        outcome.failures[f"no answer within {args.timeout:.0f} s"] += 1
        return
    except aiohttp.ClientError as exc:
        outcome.failures[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
        return
    if errored:
        outcome.failures["error event in the stream"] += 1
    elif deltas != args.events or not stopped:
        outcome.failures[f"incomplete stream ({deltas}/{args.events} deltas)"] += 1
    else:
        outcome.durations.append(time.monotonic() - began)
        outcome.first_bytes.append(first)
        outcome.events += events
        outcome.completed_by_source[target.sources[index]] += 1


class _Poller(threading.Thread):
    """Peak PostgreSQL connections to the bench DB and peak server memory, sampled."""

    def __init__(self, target: Target, database_url: str, database: str) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.database_url = database_url
        self.database = database
        self.peak_connections = 0
        self.peak_pss = 0
        self.peak_rss = 0
        self.peak_sizes: list[int] = []
        self.peak_states: list[tuple[str, int]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(benchlib.admin_url(self.database_url), autocommit=True) as conn:
            tick = 0
            while not self.stop_event.wait(0.25):
                if self.target.polls_database:
                    states = conn.execute(
                        "SELECT coalesce(state, '?'), count(*) FROM pg_stat_activity "
                        "WHERE datname = %s GROUP BY 1 ORDER BY 2 DESC",
                        [self.database],
                    ).fetchall()
                    count = sum(n for _state, n in states)
                    if count > self.peak_connections:
                        self.peak_connections, self.peak_states = count, states
                # A /proc scan for the tree's members every 5 s; their memory every 0.5 s.
                if tick % 20 == 0:
                    pids = list(self.target.server.tree())
                if tick % 2 == 0:
                    sizes = self.target.server.memory_by_process(pids)
                    pss = [proportional for proportional, _resident in sizes]
                    self.peak_rss = max(self.peak_rss, sum(resident for _, resident in sizes))
                    if sum(pss) > self.peak_pss:
                        self.peak_pss, self.peak_sizes = sum(pss), pss
                tick += 1


def _payload(provider: str, args) -> bytes:
    """The same request in each provider's form."""
    prompt = "Tell me a long story."
    if provider == "openai":
        body = {
            "model": OPENAI_MODEL,
            "max_completion_tokens": args.events + 50,
            "messages": [{"role": "user", "content": prompt}],
            "stream": True,
        }
    elif provider == "gemini":
        body = {
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"maxOutputTokens": args.events + 50},
        }
    else:
        body = {
            "model": benchlib.MODEL,
            "max_tokens": args.events + 50,
            "messages": [{"role": "user", "content": prompt}],
            "stream": True,
        }
    return json.dumps(body).encode()


def _token_route(provider: str, token: str) -> tuple[str, dict[str, str]]:
    """The streaming path and headers of a provider's endpoint, with a workspace token."""
    json_type = {"Content-Type": "application/json"}
    if provider == "openai":
        return "/openai/v1/chat/completions", {**json_type, "Authorization": f"Bearer {token}"}
    if provider == "gemini":
        path = f"/gemini/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse"
        return path, {**json_type, "x-goog-api-key": token}
    return "/anthropic/v1/messages", {**json_type, "x-api-key": token}


async def _workload(target: Target, clients: int, args) -> Outcome:
    import aiohttp

    payload = _payload(target.provider, args)
    outcome = Outcome()
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.monotonic()
        step = args.ramp / clients

        async def start(n: int):
            delay = began + n * step - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await _one_stream(session, target, n, payload, args, outcome)

        await asyncio.gather(*(start(n) for n in range(clients)))
    return outcome


def _run(target: Target, clients: int, args, standin, database: str, checker) -> dict:
    before_rows = checker.mark() if checker else None
    poller = _Poller(target, args.database_url, database)
    tree_before = target.server.tree()
    standin_before = standin.cpu()
    client_before = resource.getrusage(resource.RUSAGE_SELF)
    busy_before = benchlib.machine_busy()
    poller.start()
    wall = time.monotonic()
    outcome = asyncio.run(_workload(target, clients, args))
    wall = time.monotonic() - wall
    poller.stop_event.set()
    poller.join()
    tree_after = target.server.tree()
    busy_after = benchlib.machine_busy()
    client_after = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = benchlib.cpu_between(tree_before, tree_after)
    client_cpu = (client_after.ru_utime + client_after.ru_stime) - (
        client_before.ru_utime + client_before.ru_stime
    )
    standin_cpu = standin.cpu() - standin_before
    machine_cpu = busy_after[0] - busy_before[0]
    completed = len(outcome.durations)
    result = {
        "name": target.name,
        "completed": completed,
        "failed": sum(outcome.failures.values()),
        "failures": outcome.failures,
        "p99_ratio": _percentile(outcome.durations, 99) / args.seconds,
        "first_p50": _percentile(outcome.first_bytes, 50),
        "first_p99": _percentile(outcome.first_bytes, 99),
        "cpu_per_stream_ms": 1000 * server_cpu / max(completed, 1),
        "cpu_per_event_ms": 1000 * server_cpu / max(outcome.events, 1),
        "server_cpu": server_cpu,
        "peak_connections": poller.peak_connections if target.polls_database else None,
        "peak_pss_mb": poller.peak_pss / 2**20,
        "peak_rss_mb": poller.peak_rss / 2**20,
        "peak_sizes": poller.peak_sizes,
        "peak_states": ", ".join(f"{n} {state}" for state, n in poller.peak_states),
        "standin_cpu": standin_cpu,
        "client_cpu": client_cpu,
        "other_cpu": machine_cpu - server_cpu - standin_cpu - client_cpu,
        "machine_cpu": machine_cpu,
        "wall": wall,
        "committed": checker.verify(before_rows, outcome) if checker else "not checked",
    }
    return result


class _LedgerCheck:
    """Every request's usage row and ledger entries committed, no hold left open."""

    def mark(self) -> tuple[int, int]:
        from ai_gateway.models import AIRequest
        from credits.models import CreditEntry

        last_row = AIRequest.objects.order_by("-id").values_list("id", flat=True).first() or 0
        last_entry = CreditEntry.objects.order_by("-id").values_list("id", flat=True).first()
        return last_row, last_entry or 0

    def verify(self, mark: tuple[int, int], outcome: Outcome) -> str:
        from django.db import connections
        from django.db.models import Count

        from ai_gateway.models import AIRequest
        from credits.models import CreditEntry, EntryKind

        last_row, last_entry = mark
        expected = sum(outcome.completed_by_source.values()) + sum(outcome.failures.values())
        # A server may write the usage row just after the last event reached the client.
        deadline = time.monotonic() + 30
        while True:
            rows = AIRequest.objects.filter(id__gt=last_row)
            if rows.count() >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        by = {
            (row["credential_source"], row["outcome"]): row["n"]
            for row in rows.values("credential_source", "outcome").annotate(n=Count("id"))
        }
        entries = CreditEntry.objects.filter(id__gt=last_entry)
        kinds = dict(entries.values_list("kind").annotate(n=Count("id")).values_list("kind", "n"))
        open_holds = entries.filter(kind=EntryKind.HOLD, closes__isnull=True).count()
        connections.close_all()
        ok_byok = by.get(("byok", "ok"), 0)
        ok_platform = by.get(("platform", "ok"), 0)
        want_byok = outcome.completed_by_source["byok"]
        want_platform = outcome.completed_by_source["credits"]
        problems = []
        if ok_byok < want_byok or ok_platform < want_platform:
            problems.append(
                f"usage rows ok: {ok_byok} BYOK / {ok_platform} credits for "
                f"{want_byok} / {want_platform} completed streams"
            )
        if kinds.get("settle", 0) < want_platform:
            problems.append(f"{kinds.get('settle', 0)} settlements for {want_platform} streams")
        if open_holds:
            problems.append(f"{open_holds} holds left open")
        others = {f"{s}/{o}": n for (s, o), n in by.items() if o != "ok"}
        summary = (
            f"{sum(by.values())} usage rows ({ok_byok} BYOK ok, {ok_platform} credits ok"
            + (f", other {others}" if others else "")
            + f"); ledger: {kinds.get('hold', 0)} holds, {kinds.get('settle', 0)} settled, "
            f"{kinds.get('release', 0)} released, {open_holds} open"
        )
        return ("OK: " if not problems else "PROBLEM: " + "; ".join(problems) + " — ") + summary


def _setup_project(args, env: dict[str, str]) -> tuple[list, list[str]]:
    """Migrate, then create the workspaces, their users, keys and credits."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    from credits.services import credits_grant
    from llm_keys.services import Actor, llm_key_set
    from workspaces.services import workspace_create

    if args.api == "token":
        _require_token_command()
    call_command("migrate", verbosity=0)
    workspaces, sources = [], []
    for n in range(args.workspaces):
        source = ("byok" if n % 2 == 0 else "credits") if args.mode == "mixed" else args.mode
        email = f"bench-{n}@example.com"
        workspace = workspace_create(
            slug=f"bench-{n}", name=f"Bench {n}", admin_email=email, admin_password=None
        )
        user = get_user_model().objects.get(email=email)
        user.set_password(benchlib.PASSWORD)
        user.save(update_fields=["password"])
        if source == "byok":
            keys = {
                "anthropic": "sk-ant-api03-bench-" + os.urandom(12).hex(),
                "openai": "sk-proj-bench-" + os.urandom(16).hex(),
                "gemini": "AIza" + os.urandom(16).hex()[:35].ljust(35, "0"),
            }
            for provider in args.provider:
                llm_key_set(
                    workspace=workspace,
                    provider=provider,
                    raw_key=keys[provider],
                    actor=Actor(label="bench"),
                    check=False,
                )
        else:
            credits_grant(workspace=workspace, amount=10**12, reason="stream capacity bench")
        workspaces.append((workspace.slug, email))
        sources.append(source)
    connections.close_all()
    return workspaces, sources


def _api_token(slug: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_token", slug, "--name", "stream-bench"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"create_api_token {slug} failed: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout.strip().splitlines()[-1]


def _require_token_command() -> None:
    from django.core.management import get_commands

    if "create_api_token" not in get_commands():
        sys.exit(
            "--api token needs the create_api_token command and POST /anthropic/v1/messages "
            "(SPEC §13), which this checkout does not have yet; use --api session."
        )


def _print_results(clients: int, args, results: list[dict], sources: list[str]) -> None:
    share = collections.Counter(sources[n % len(sources)] for n in range(clients))
    print(
        f"\nC = {clients} streams started evenly over {args.ramp:g} s; S = {args.seconds:g} s, "
        f"{args.events} deltas each ({share['byok']} BYOK, {share['credits']} credits for this "
        "project)"
    )
    width = 30
    names = [result["name"] for result in results]
    print(f"  {'':<{width}}" + "".join(f"{name:>22}" for name in names))

    def row(label: str, values: list[str]) -> None:
        print(f"  {label:<{width}}" + "".join(f"{value:>22}" for value in values))

    row("completed / failed", [f"{r['completed']} / {r['failed']}" for r in results])
    row("p99 stream duration / S", [f"{r['p99_ratio']:.2f} x" for r in results])
    row("first byte p50 / p99", [f"{r['first_p50']:.3f} / {r['first_p99']:.3f} s" for r in results])
    row("server CPU per stream", [f"{r['cpu_per_stream_ms']:.1f} ms" for r in results])
    row("server CPU per relayed event", [f"{r['cpu_per_event_ms']:.3f} ms" for r in results])
    row("server CPU, whole run", [f"{r['server_cpu']:.1f} s" for r in results])
    row(
        "peak PostgreSQL connections",
        ["-" if r["peak_connections"] is None else str(r["peak_connections"]) for r in results],
    )
    if results[0]["peak_states"]:
        print(f"  {'  at the peak':<{width}}{results[0]['peak_states']:>22}")
    row("peak server memory (PSS)", [f"{r['peak_pss_mb']:.0f} MB" for r in results])
    row(
        "  of which processes (MB)",
        [
            "+".join(str(round(size / 2**20)) for size in r["peak_sizes"] if size > 2**23)
            for r in results
        ],
    )
    row("  RSS, shared pages in full", [f"{r['peak_rss_mb']:.0f} MB" for r in results])
    row("stand-in CPU", [f"{r['standin_cpu']:.1f} s" for r in results])
    row("client CPU", [f"{r['client_cpu']:.1f} s" for r in results])
    row("rest of the machine CPU", [f"{r['other_cpu']:.1f} s" for r in results])
    row(
        "machine busy (2 cores)",
        [
            f"{100 * r['machine_cpu'] / (r['wall'] * os.cpu_count()):.0f} % of {r['wall']:.0f} s"
            for r in results
        ],
    )
    for other in results[1:]:
        if other["cpu_per_stream_ms"]:
            ratio = results[0]["cpu_per_stream_ms"] / other["cpu_per_stream_ms"]
            print(f"  CPU per stream, {results[0]['name']} / {other['name']}: {ratio:.2f}")
    for result in results:
        if result["failures"]:
            reasons = ", ".join(f"{n} x {reason}" for reason, n in result["failures"].most_common())
            print(f"  {result['name']} failures: {reasons}")
        print(f"  {result['name']} committed: {result['committed']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which C start")
    parser.add_argument("--events", type=int, default=100, help="text deltas per stream")
    parser.add_argument("--seconds", type=float, default=10.0, help="S, length of one stream")
    parser.add_argument("--mode", choices=["mixed", "byok", "credits"], default="mixed")
    parser.add_argument("--workspaces", type=int, default=10, help="one user each")
    parser.add_argument("--api", choices=["session", "token"], default="session")
    parser.add_argument(
        "--provider",
        choices=PROVIDERS,
        nargs="+",
        default=["anthropic"],
        help="whose endpoints carry the workload, each in turn (openai, gemini: --api token)",
    )
    parser.add_argument("--litellm", action="store_true", help="also through a LiteLLM proxy")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also through bench/floor_relay.py: bytes relayed, nothing else (no framework, "
        "database or accounting), the least any Python gateway does at this load",
    )
    parser.add_argument(
        "--serve-command",
        default=None,
        help="shell command serving the project on $PORT with $WEB_CONCURRENCY processes "
        "(default: make serve where the Makefile has it, else the README's gunicorn command)",
    )
    parser.add_argument("--web-concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--warmup", type=int, default=20, help="streams per server before measuring"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="per stream, seconds")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    if args.provider != ["anthropic"] and args.api != "token":
        sys.exit("--provider openai|gemini needs --api token (the session API is Anthropic's).")
    if not args.database_url.startswith("postgres"):
        sys.exit("--database-url must be a PostgreSQL URL (the bench creates the database).")
    serve_command = args.serve_command or benchlib.default_serve_command()

    benchlib.raise_open_files_limit()
    database = args.database_url.rsplit("/", 1)[1]
    benchlib.ensure_database(args.database_url, fresh=True)
    standin = benchlib.StandinProcess(events=args.events, seconds=args.seconds)
    env = benchlib.server_environment(standin_url=standin.url, database_url=args.database_url)
    env["WEB_CONCURRENCY"] = str(args.web_concurrency)
    env.update(
        {
            "OPENAI_BASE_URL": standin.url + "/v1",
            "PLATFORM_OPENAI_API_KEY": PLATFORM_OPENAI_KEY,
            "GEMINI_BASE_URL": standin.url,
            "PLATFORM_GEMINI_API_KEY": PLATFORM_GEMINI_KEY,
        }
    )
    # A capacity bench: every stream a workspace opens is let through (the per-workspace limit
    # of credit-paid requests, 16 by default, and the API's per-token and per-workspace
    # concurrency limits, 32 and 64 per process with the local-memory cache, would answer 429
    # above them: 50 streams of a token split unevenly over two processes). They are still
    # counted.
    for limit in (
        "AI_CREDITS_MAX_CONCURRENT_REQUESTS",
        "AI_API_TOKEN_MAX_CONCURRENT_REQUESTS",
        "AI_API_WORKSPACE_MAX_CONCURRENT_REQUESTS",
    ):
        env[limit] = str(max(args.clients))
    servers: list[benchlib.Served] = []
    try:
        workspaces, sources = _setup_project(args, env)
        load = os.getloadavg()
        print(
            f"Machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
            f"{load[2]:.2f} before the run (other engineers share it)."
        )
        print(
            f"This project: {serve_command} (WEB_CONCURRENCY={args.web_concurrency}), "
            f"PostgreSQL database {database}, {args.api} API"
        )
        project = benchlib.Served(
            "the project's server",
            serve_command,
            env=env,
            health="/healthz",
            log=benchlib.VAR / "bench-stream-server.log",
        )
        servers.append(project)
        if args.api == "token":
            tokens = [_api_token(slug, env) for slug, _email in workspaces]
            targets = []
            for provider in args.provider:
                routes = [_token_route(provider, token) for token in tokens]
                name = "this project" if len(args.provider) == 1 else f"project /{provider}"
                targets.append(
                    Target(
                        name,
                        project,
                        [path for path, _ in routes],
                        [headers for _, headers in routes],
                        sources,
                        provider=provider,
                    )
                )
        else:
            headers = [
                asyncio.run(benchlib.log_in(project.url, email)) for _slug, email in workspaces
            ]
            paths = [f"/api/v1/w/{slug}/messages" for slug, _email in workspaces]
            targets = [Target("this project", project, paths, headers, sources)]
        if args.litellm:
            command = benchlib.litellm_command(standin_url=standin.url)
            litellm = benchlib.Served(
                "LiteLLM",
                command,
                env=benchlib.LITELLM_ENV,
                health="/health/liveliness",
                log=benchlib.VAR / "bench-stream-litellm.log",
            )
            servers.append(litellm)
            print(f"LiteLLM {benchlib.litellm_version()} proxy, 2 uvicorn workers, /v1/messages")
            litellm_headers = {
                "Content-Type": "application/json",
                "x-api-key": benchlib.LITELLM_MASTER_KEY,
                "anthropic-version": "2023-06-01",
            }
            targets.append(
                Target(
                    f"LiteLLM {benchlib.litellm_version()}",
                    litellm,
                    ["/v1/messages"],
                    [litellm_headers],
                    ["credits"],
                    polls_database=False,
                )
            )
        if args.floor:
            floor = benchlib.Served(
                "the floor relay",
                f"{shlex.quote(sys.executable)} -m uvicorn bench.floor_relay:app --port $PORT "
                f"--workers {args.web_concurrency} --no-access-log --log-level warning",
                env={"FLOOR_UPSTREAM": standin.url, "FLOOR_API_KEY": benchlib.PLATFORM_KEY},
                health="/health",
                log=benchlib.VAR / "bench-stream-floor.log",
            )
            servers.append(floor)
            print(f"Floor: bench/floor_relay.py, {args.web_concurrency} uvicorn workers")
            targets.append(
                Target(
                    "floor relay",
                    floor,
                    ["/v1/messages"],
                    [{"Content-Type": "application/json"}],
                    ["credits"],
                    polls_database=False,
                )
            )
        # No server is measured cold: first requests import and build what they use.
        for target in targets:
            asyncio.run(_workload(target, args.warmup, args))
        checker = _LedgerCheck()
        for clients in args.clients:
            results = []
            for target in targets:
                results.append(
                    _run(
                        target,
                        clients,
                        args,
                        standin,
                        database,
                        checker if target.server is project else None,
                    )
                )
                time.sleep(2)
            _print_results(clients, args, results, sources)
    finally:
        for server in servers:
            server.stop()
        standin.stop()


if __name__ == "__main__":
    main()
