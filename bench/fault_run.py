"""A fault run: mixed AI load against a real web server and a real Celery worker on
PostgreSQL and Redis, while the stand-in injects provider faults and the run kills a web
process and a worker process once each. Prints the figures and their targets at the end.

    .venv/bin/python bench/fault_run.py [--seconds 120] [--clients 6]
        [--database-url postgres://postgres@127.0.0.1:5432/byok_harden_bench]
        [--redis-url redis://127.0.0.1:6379/10]

The web server is what `make serve` runs (uvicorn on config.asgi, two worker processes);
--server-cmd takes another command (it gets {port}).
The database named by --database-url is dropped and created.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTINELS = {
    "byok": "sk-ant-api03-FAULTRUN0byok0sentinel0Qw3rTy7uIo9pAs2dFg4hJk6lZx8cV",
    "revoke": "sk-ant-api03-FAULTRUN0revoke0sentinel0Mn1bVc3xZl5kJh7gFd9sAp2oIu",
    "platform": "sk-ant-api03-FAULTRUN0platform0sentinel0Yt6rEw4qAz8xSw2eDc5rFv7tGb",
}
FAULTS = [
    "ok",
    "ok",
    "ok",
    "ratelimited",
    "servererror",
    "overloaded",
    "timeout",
    "connreset",
    "streamerror",
]
MODEL = "claude-haiku-4-5"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class Load:
    def __init__(self, port: int, sessions: dict[str, tuple[str, str]], deadline: float):
        self.port = port
        self.sessions = sessions
        self.deadline = deadline
        self.sent = Counter()
        self.statuses = Counter()
        self.lock = threading.Lock()
        self.longest = 0.0

    def one(self, rng: random.Random) -> None:
        slug = rng.choice(list(self.sessions))
        session, csrf = self.sessions[slug]
        stream = rng.random() < 0.5
        disconnect = stream and rng.random() < 0.25
        body = json.dumps(
            {
                "model": MODEL,
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "Say hello."}],
                "stream": stream,
            }
        )
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        kind = f"{slug}/{'stream' if stream else 'plain'}{'/disconnect' if disconnect else ''}"
        try:
            conn.request(
                "POST",
                f"/api/v1/w/{slug}/messages",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "Cookie": f"sessionid={session}; csrftoken={csrf}",
                    "X-CSRFToken": csrf,
                    "Origin": f"http://127.0.0.1:{self.port}",
                    "Referer": f"http://127.0.0.1:{self.port}/",
                },
            )
            response = conn.getresponse()
            status = str(response.status)
            if disconnect:
                response.read(64)  # then hang up mid-stream
            else:
                response.read()
        except (OSError, http.client.HTTPException) as exc:
            status = type(exc).__name__
        finally:
            conn.close()
        with self.lock:
            self.sent[kind] += 1
            self.statuses[status] += 1
            self.longest = max(self.longest, time.monotonic() - started)

    def run(self, seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < self.deadline:
            self.one(rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/byok_harden_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    parser.add_argument(
        "--server-cmd",
        # The server `make serve` starts: uvicorn on config.asgi with two worker processes.
        default=f"{sys.executable} -m uvicorn config.asgi:application --host 127.0.0.1 "
        "--port {port} --workers 2 --lifespan off --no-access-log",
    )
    args = parser.parse_args()
    work = ROOT / "var" / "fault_run"
    work.mkdir(parents=True, exist_ok=True)

    from llm_keys.crypto import generate_entry

    standin_port, web_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LLM_KEY_"))},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_READ_DOT_ENV": "false",
        "DJANGO_SECRET_KEY": "fault-run-secret-" + os.urandom(8).hex(),
        "DJANGO_SECURE_COOKIES": "false",
        "LLM_KEY_ENCRYPTION_KEYS": generate_entry("fault"),
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.redis_url,
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{standin_port}",
        "PLATFORM_ANTHROPIC_API_KEY": SENTINELS["platform"],
        "AI_REQUEST_TIMEOUT_SECONDS": "3",
        "LLM_KEY_CHECK_INTERVAL_MINUTES": "1",
        "LLM_KEY_CHECK_TIMEOUT_SECONDS": "2",
        "LOG_LEVEL": "DEBUG",
        "EMAIL_URL": "consolemail://",
    }
    os.environ.update(env)
    recreate_database(args.database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )

    import django

    django.setup()
    from django.test import Client

    from credits.models import CreditAccount, CreditEntry, EntryKind
    from credits.services import credits_grant
    from llm_keys.models import KeyStatus, LLMKey
    from llm_keys.services import Actor, llm_key_set
    from workspaces.models import Membership
    from workspaces.services import workspace_create

    logs = {name: (work / f"{name}.log").open("w") for name in ("standin", "web", "worker")}
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str, cmd: list[str]) -> None:
        procs[name] = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=logs[name],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    start(
        "standin",
        [
            sys.executable,
            "-m",
            "tests.anthropic_standin",
            "--port",
            str(standin_port),
            "--latency",
            "0.05",
        ],
    )
    wait_port(standin_port)

    sessions: dict[str, tuple[str, str]] = {}
    for slug in ("byok", "revoke", "credits"):
        workspace = workspace_create(slug=slug, name=slug.title(), admin_email=f"{slug}@bench.test")
        user = Membership.objects.get(workspace=workspace).user
        if slug in SENTINELS:
            llm_key_set(
                workspace=workspace,
                raw_key=SENTINELS[slug],
                actor=Actor(label="bench"),
                check=False,
            )
        else:
            credits_grant(workspace=workspace, amount=50_000_000, reason="fault run")
        client = Client()
        client.force_login(user)
        sessions[slug] = (client.cookies["sessionid"].value, "f" * 32)

    def behave(key: str, behavior: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", standin_port, timeout=5)
        conn.request(
            "POST", "/_standin/behavior", body=json.dumps({"key": key, "behavior": behavior})
        )
        conn.getresponse().read()
        conn.close()

    start("web", args.server_cmd.format(port=web_port).split())
    worker_cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--concurrency=2",
        "--loglevel=DEBUG",
        "--without-gossip",
        "--without-mingle",
        "-B",
        "-s",
        str(work / "beat-schedule"),
    ]
    start("worker", worker_cmd)
    wait_port(web_port)

    started = time.monotonic()
    deadline = started + args.seconds
    load = Load(web_port, sessions, deadline)
    threads = [threading.Thread(target=load.run, args=(n,)) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    events = []
    rng = random.Random(7)
    killed_web = killed_worker = revoked = False
    while time.monotonic() < deadline:
        elapsed = time.monotonic() - started
        behave(SENTINELS["platform"], rng.choice(FAULTS))
        behave(SENTINELS["byok"], rng.choice(FAULTS))
        if not revoked and elapsed > args.seconds * 0.4:
            behave(SENTINELS["revoke"], "revoked")
            revoked = True
            events.append(f"{elapsed:5.1f} s: the 'revoke' key revoked at the provider")
        if not revoked:
            behave(SENTINELS["revoke"], rng.choice(FAULTS))
        if not killed_web and elapsed > args.seconds / 3:
            children = subprocess.run(
                ["pgrep", "-P", str(procs["web"].pid), "-f", "spawn_main"],
                capture_output=True,
                text=True,
            ).stdout.split()
            if children:
                os.kill(int(children[0]), signal.SIGKILL)
                events.append(f"{elapsed:5.1f} s: killed web process {children[0]}")
            killed_web = True
        if not killed_worker and elapsed > args.seconds / 2:
            os.killpg(procs["worker"].pid, signal.SIGKILL)
            procs["worker"].wait()
            events.append(f"{elapsed:5.1f} s: killed the worker (and its pool); restarted")
            start("worker", worker_cmd)
            killed_worker = True
        time.sleep(3)
    for thread in threads:
        thread.join()
    for name in ("byok", "platform"):
        behave(SENTINELS[name], "ok")
    time.sleep(max(10.0, load.longest))  # streams settle, checks land

    for name in ("web", "worker", "standin"):
        os.killpg(procs[name].pid, signal.SIGTERM)
        try:
            procs[name].wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(procs[name].pid, signal.SIGKILL)
    for log in logs.values():
        log.close()

    from datetime import timedelta

    from django.db.models import Sum
    from django.utils import timezone

    from ai_gateway.models import AIRequest
    from tests.leaks import database_text

    sent = sum(load.sent.values())
    usage_rows = AIRequest.objects.count()
    mismatched = []
    for account in CreditAccount.objects.all():
        total = (
            CreditEntry.objects.filter(workspace_id=account.workspace_id).aggregate(
                s=Sum("amount")
            )["s"]
            or 0
        )
        if total != account.balance:
            mismatched.append(account.workspace_id)
    old = timezone.now() - timedelta(seconds=load.longest + 1)
    open_holds = (
        CreditEntry.objects.filter(kind=EntryKind.HOLD, created_at__lt=old)
        .exclude(closes__isnull=False)
        .count()
    )
    invalid = sorted(
        LLMKey.objects.filter(status=KeyStatus.INVALID).values_list("workspace__slug", flat=True)
    )
    false_invalid = [s for s in invalid if s != "revoke"]
    texts = {name: (work / f"{name}.log").read_text(errors="replace") for name in ("web", "worker")}
    texts["database"] = database_text()
    leaks = {name: sum(text.count(k) for k in SENTINELS.values()) for name, text in texts.items()}

    print(
        f"fault run: {args.seconds:.0f} s, {args.clients} clients; logs in {work.relative_to(ROOT)}"
    )
    for event in events:
        print("  " + event)
    print(f"requests sent: {sent}  {dict(load.sent)}")
    print(f"answers: {dict(load.statuses)}")
    answered = sum(n for status, n in load.statuses.items() if status.isdigit())
    print(
        f"usage rows: {usage_rows}; requests answered by the server: {answered}, cut off "
        f"(the killed web process, client errors): {sent - answered}  (target: one row per "
        "request that reached the gateway: answered <= rows <= sent)"
    )
    print(f"ledger accounts whose balance != sum of entries: {len(mismatched)}  (target 0)")
    print(
        f"holds open longer than the longest request ({load.longest:.1f} s): {open_holds}  "
        "(target 0 once a reaper has run)"
    )
    print(f"keys marked invalid: {invalid}; false invalidations: {len(false_invalid)}  (target 0)")
    print(f"sentinel keys in any output: {sum(leaks.values())} {leaks}  (target 0)")


if __name__ == "__main__":
    main()
