"""Time the gateway adds to an AI request, over a direct SDK call with a reused client.

Against a zero-latency Anthropic stand-in on loopback, each round makes one direct SDK call
(the shared pooled client, ``with_options(api_key=...)``) and one call through the gateway,
interleaved so drift hits both alike; the figure is median(gateway) - median(direct).

The timed parts use a stand-in in its own process (``python -m tests.anthropic_standin``), as
a real provider is remote: a stand-in thread inside this process would compete for the GIL
with the code being measured and inflate the gateway's figure (by ~0.4 ms here). Only the
connection count uses an in-process stand-in, which counts the TCP connections it accepts.

- Python entry point ``ai_gateway.services.create_message``: BYOK and AI credits;
- HTTP ``POST /api/v1/w/<slug>/messages`` served by gunicorn (a real WSGI server), session
  cookie + CSRF header, keep-alive connection (gthread; ``--worker-class sync`` to compare):
  BYOK and AI credits;
- TCP connections the stand-in accepted for 1,000 requests over 100 BYOK workspaces from
  32 threads (must stay <= AI_HTTP_POOL_SIZE).

Every usage row and ledger entry is committed durably (synchronous_commit as the server has
it, printed below). Run on PostgreSQL:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/byok_bench_gateway \\
        .venv/bin/python bench/gateway_overhead.py

The database named in DATABASE_URL is created if missing and migrated.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.anthropic_standin import StandIn  # noqa: E402

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Reply with one short sentence."}]
MAX_TOKENS = 64
PLATFORM_KEY = "sk-ant-api03-" + "P" * 40 + "bench"
PASSWORD = "bench-password-not-secret"


def _key() -> str:
    return "sk-ant-api03-" + secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")


def _ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _environment(standin_url: str) -> dict[str, str]:
    ring = "bench:" + base64.b64encode(os.urandom(32)).decode()
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_READ_DOT_ENV": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_DEBUG": "false",
        "LLM_KEY_ENCRYPTION_KEYS": ring,
        "ANTHROPIC_BASE_URL": standin_url,
        "PLATFORM_ANTHROPIC_API_KEY": PLATFORM_KEY,
        "LOG_LEVEL": "WARNING",
        "EMAIL_URL": "dummymail://",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _report(label: str, direct: list[float], through: list[float], target: float | None) -> dict:
    added = _median_ms(through) - _median_ms(direct)
    paired = statistics.median(t - d for d, t in zip(direct, through, strict=True)) * 1000
    verdict = ""
    if target is not None:
        verdict = f"  target <= {target:.1f} ms: {'met' if added <= target else 'MISSED'}"
    print(
        f"  {label:<24} direct {_median_ms(direct):6.3f} ms  gateway {_median_ms(through):6.3f} ms"
        f"  added {added:6.3f} ms (paired {paired:6.3f}){verdict}"
    )
    return {"label": label, "added_ms": added, "paired_ms": paired}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--no-http", action="store_true", help="skip the gunicorn part")
    parser.add_argument(
        "--worker-class",
        choices=["gthread", "sync"],
        default="gthread",
        help="gunicorn worker class (gthread keeps the connection alive; sync closes it)",
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="gunicorn gthread worker threads (default 4)"
    )
    parser.add_argument(
        "--profile", choices=["byok", "credits"], help="profile 500 gateway calls and stop"
    )
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (created if missing).")
    _ensure_database(database_url)

    remote = _RemoteStandIn()
    atexit.register(remote.stop)
    env = _environment(remote.url)
    os.environ.update(env)

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)

    from ai_gateway.services import create_message
    from credits.services import credits_grant
    from llm_keys.services import Actor, llm_key_set
    from providers.anthropic import shared_client
    from workspaces.models import Membership, Workspace

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        sync_commit = cursor.fetchone()[0]
        cursor.execute("SHOW fsync")
        fsync = cursor.fetchone()[0]
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]

    # The floor every durable write pays on this server right now: one insert + commit.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (id serial, at timestamptz)")
        probe = []
        for _ in range(300):
            start = time.perf_counter()
            cursor.execute("INSERT INTO bench_commit_probe (at) VALUES (now())")
            probe.append(time.perf_counter() - start)
        cursor.execute("DROP TABLE bench_commit_probe")
    commit_ms = _median_ms(probe)

    run = secrets.token_hex(3)
    user = get_user_model().objects.create_user(
        username=f"bench-{run}@example.com", email=f"bench-{run}@example.com", password=PASSWORD
    )
    byok_workspaces = []
    byok_keys = []
    for n in range(100):
        workspace = Workspace.objects.create(name=f"Bench {run} {n}", slug=f"bench-{run}-{n}")
        Membership.objects.create(workspace=workspace, user=user, role="member")
        key = _key()
        llm_key_set(workspace=workspace, raw_key=key, actor=Actor(label="bench"), check=False)
        byok_workspaces.append(workspace)
        byok_keys.append(key)
    platform = Workspace.objects.create(name=f"Bench {run} credits", slug=f"bench-{run}-credits")
    Membership.objects.create(workspace=platform, user=user, role="member")
    credits_grant(workspace=platform, amount=10**15, reason="benchmark")

    client = shared_client()
    byok_key = byok_keys[0]
    byok_ws = byok_workspaces[0]

    def direct_byok():
        client.with_options(api_key=byok_key).messages.create(
            model=MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS
        )

    def direct_platform():
        client.with_options(api_key=PLATFORM_KEY).messages.create(
            model=MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS
        )

    def gateway(workspace):
        def call():
            create_message(
                workspace=workspace,
                user=user,
                model=MODEL,
                messages=MESSAGES,
                max_tokens=MAX_TOKENS,
            )

        return call

    if args.profile:
        import cProfile
        import pstats

        call = gateway(byok_ws if args.profile == "byok" else platform)
        for _ in range(100):
            call()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(500):
            call()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        remote.stop()
        return

    print(
        f"PostgreSQL {version}; synchronous_commit={sync_commit}, fsync={fsync}; "
        f"stand-in {remote.url} (own process, zero latency); model {MODEL}; "
        f"{args.rounds} interleaved rounds"
    )
    print(f"One single-row INSERT + durable COMMIT on this server now: {commit_ms:.3f} ms (median)")
    results = []
    print("Python entry point (ai_gateway.services.create_message):")
    for label, direct, through, target in (
        ("BYOK", direct_byok, gateway(byok_ws), 1.0),
        ("AI credits", direct_platform, gateway(platform), 2.0),
    ):
        _interleave(args.warmup, direct, through)
        results.append(_report(label, *_interleave(args.rounds, direct, through), target))

    if not args.no_http:
        results += _http_part(
            args, env, database_url, user, byok_ws, platform, direct_byok, direct_platform
        )

    remote.stop()

    # Connections: 1,000 requests over 100 BYOK workspaces from more threads than the pool,
    # against an in-process stand-in that counts the TCP connections it accepts (a new
    # base URL gives the gateway a new pooled client, starting from zero connections).
    from django.db import connections

    standin = StandIn().start()
    settings.ANTHROPIC_BASE_URL = standin.url
    errors: list[BaseException] = []
    threads = 32
    per_thread = 1000 // threads + 1
    counter = iter(range(1000))
    lock = threading.Lock()

    def worker():
        try:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                create_message(
                    workspace=byok_workspaces[n % 100],
                    user=user,
                    model=MODEL,
                    messages=MESSAGES,
                    max_tokens=MAX_TOKENS,
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    del per_thread
    served = len([r for r in standin.requests if r.path == "/v1/messages"])
    accepted = standin.state.connections
    distinct_keys = len({r.api_key for r in standin.requests})
    pool = settings.AI_HTTP_POOL_SIZE
    print(
        f"Connections: {served} requests over 100 BYOK workspaces ({distinct_keys} distinct keys)"
        f" from {threads} threads -> {accepted} TCP connections accepted by the stand-in "
        f"(pool size {pool}): {'met' if accepted <= pool else 'MISSED'}"
        + (f"; {len(errors)} errors: {errors[0]!r}" if errors else "")
    )
    standin.stop()


class _RemoteStandIn:
    """The stand-in as a separate process on a free loopback port."""

    def __init__(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.anthropic_standin", "--port", str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    sys.exit("the stand-in process did not start")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _http_part(args, env, database_url, user, byok_ws, platform, direct_byok, direct_platform):
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    SessionStore = import_module(settings.SESSION_ENGINE).SessionStore
    from django.middleware.csrf import _get_new_csrf_string

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    csrf = _get_new_csrf_string()

    port = _free_port()
    server_env = {**os.environ, **env, "DATABASE_URL": database_url}
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.threads),
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=server_env,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("gunicorn did not start")
            time.sleep(0.2)

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {
            "Content-Type": "application/json",
            "Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}; "
            f"{settings.CSRF_COOKIE_NAME}={csrf}",
            "X-CSRFToken": csrf,
        }
        payload = json.dumps({"model": MODEL, "max_tokens": MAX_TOKENS, "messages": MESSAGES})

        def through(slug):
            path = f"/api/v1/w/{slug}/messages"

            def call():
                conn.request("POST", path, payload, headers)
                response = conn.getresponse()
                data = response.read()
                if response.status != 200:
                    raise SystemExit(f"HTTP {response.status}: {data[:300]!r}")

            return call

        results = []
        print(
            f"HTTP endpoint (gunicorn {args.worker_class}, 1 worker"
            f"{', keep-alive' if args.worker_class == 'gthread' else ''}; session + CSRF;"
            f" sessions: {settings.SESSION_ENGINE}):"
        )
        for label, direct, call, target in (
            ("BYOK", direct_byok, through(byok_ws.slug), 2.3),
            ("AI credits", direct_platform, through(platform.slug), None),
        ):
            _interleave(args.warmup, direct, call)
            results.append(_report(label, *_interleave(args.rounds, direct, call), target))
        return results
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=20)


if __name__ == "__main__":
    main()
