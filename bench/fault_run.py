"""A fault run: mixed AI load against a real web server and a real Celery worker on
PostgreSQL and Redis, while the stand-in injects provider faults and the run kills a web
process and a worker process once each. Prints the figures and their targets at the end.

Metering (issue 19): every stream is longer than a reservation's lease (AI_HOLD_MAX_AGE_SECONDS
is short here) while the sweep runs every few seconds; some credit streams ask for hidden
thinking and hang up at once; one workspace has too few credits and runs out mid-stream.

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
LEASE_SECONDS = 4
# Every answer this long, spaced so that a stream outlives a lease (about 6 s).
ANSWER_WORDS = 120
WORD_DELAY = 0.05
HIDDEN_THINKING_TOKENS = 5_000
SMALL_FUND = 300  # the 'small' workspace: runs out mid-stream


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
        stream = rng.random() < 0.5 or slug == "small"
        hidden = stream and slug == "credits" and rng.random() < 0.3
        disconnect = stream and (hidden or rng.random() < 0.25)
        request = {
            "model": MODEL if slug != "small" else "claude-sonnet-5",
            "max_tokens": 64 if not stream else 8_000,
            "messages": [{"role": "user", "content": "Say hello."}],
            "stream": stream,
        }
        if hidden:
            request["thinking"] = {"type": "enabled", "budget_tokens": 6_000, "display": "omitted"}
        body = json.dumps(request)
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        kind = (
            f"{slug}/{'stream' if stream else 'plain'}{'/hidden' if hidden else ''}"
            f"{'/disconnect' if disconnect else ''}"
        )
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
        "AI_HOLD_MAX_AGE_SECONDS": str(LEASE_SECONDS),
        "AI_FIRST_OUTPUT_TOKENS": "64",  # the small workspace extends, then runs out
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
    for slug in ("byok", "revoke", "credits", "small"):
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
            amount = SMALL_FUND if slug == "small" else 50_000_000
            credits_grant(workspace=workspace, amount=amount, reason="fault run")
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

    conn = http.client.HTTPConnection("127.0.0.1", standin_port, timeout=5)
    conn.request(
        "POST",
        "/_standin/metering",
        body=json.dumps(
            {
                "answer_words": ANSWER_WORDS,
                "stream_word_delay": WORD_DELAY,
                "hidden_thinking_tokens": HIDDEN_THINKING_TOKENS,
            }
        ),
    )
    conn.getresponse().read()
    conn.close()
    from credits.services import credits_reservations_charge_expired

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
        swept = credits_reservations_charge_expired()
        if swept:
            events.append(f"{elapsed:5.1f} s: the sweep charged {len(swept)} reservation(s)")
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
    time.sleep(LEASE_SECONDS + 1)
    swept_after = credits_reservations_charge_expired()  # the killed web process's

    for name in ("web", "worker", "standin"):
        os.killpg(procs[name].pid, signal.SIGTERM)
        try:
            procs[name].wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(procs[name].pid, signal.SIGKILL)
    for log in logs.values():
        log.close()

    from django.db.models import Count, Q, Sum

    from ai_gateway.models import AIRequest
    from credits.models import CreditReservation
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
    open_reservations = CreditReservation.objects.filter(state="open").count()
    # Free: the provider billed something (input or output came back) and nothing was charged.
    free = (
        AIRequest.objects.filter(credential_source="platform", credits_charged=0)
        .filter(Q(input_tokens__gt=0) | Q(output_tokens__gt=0))
        .count()
    )
    shortfalls = CreditEntry.objects.filter(kind=EntryKind.SETTLE, written_off__gt=0).aggregate(
        n=Count("id"), credits=Sum("written_off")
    )
    late = CreditEntry.objects.filter(
        kind=EntryKind.SETTLE, hold__closes__kind=EntryKind.RELEASE
    ).count()
    hidden_sent = sum(n for kind, n in load.sent.items() if "/hidden" in kind)
    # A hidden-thinking stream read on to its final usage reports the thinking as output.
    hidden_charged = AIRequest.objects.filter(
        workspace__slug="credits",
        outcome="client_disconnected",
        output_tokens__gte=HIDDEN_THINKING_TOKENS,
        credits_charged__gt=0,
    ).count()
    outcomes = Counter(
        AIRequest.objects.filter(credential_source="platform").values_list("outcome", flat=True)
    )
    per_workspace = []
    for account in CreditAccount.objects.select_related("workspace").order_by("workspace__slug"):
        total = (
            CreditEntry.objects.filter(workspace_id=account.workspace_id).aggregate(
                s=Sum("amount")
            )["s"]
            or 0
        )
        per_workspace.append((account.workspace.slug, account.balance, total))
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
    for slug, balance, total in per_workspace:
        mark = "=" if balance == total else "!="
        print(f"  {slug}: balance {balance:,} {mark} ledger {total:,}")
    print(f"credit requests by outcome: {dict(outcomes)}")
    print(f"credit requests free of charge (input or output billed, 0 charged): {free}  (target 0)")
    print(
        f"abandoned hidden-thinking streams: {hidden_sent} sent; charged their hidden "
        f"thinking (>= {HIDDEN_THINKING_TOKENS:,} output tokens): {hidden_charged}  (target: "
        "all but those the provider faults or the killed web process cut)"
    )
    print(
        f"shortfalls (usage the balance could not cover): {shortfalls['n']} requests, "
        f"{shortfalls['credits'] or 0:,} credits; late settles after a sweep: {late}"
    )
    print(
        f"open reservations after the last sweep ({len(swept_after)} released then): "
        f"{open_reservations}  (target 0)"
    )
    print(f"keys marked invalid: {invalid}; false invalidations: {len(false_invalid)}  (target 0)")
    print(f"sentinel keys in any output: {sum(leaks.values())} {leaks}  (target 0)")


if __name__ == "__main__":
    main()
