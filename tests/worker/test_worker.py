"""A real Celery worker process, on Redis and PostgreSQL, checks stored keys against the stand-in.

Run with `make test-worker` (skipped otherwise): it starts the worker itself, sends the sweep
through Redis as beat would, and stops everything, each wait bounded.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from email import message_from_string
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.conf import settings as django_settings
from django.db import connection

from llm_keys.models import KeyEvent, KeyStatus, LLMKey
from llm_keys.services import Actor, llm_key_set
from tests.conftest import SENTINEL_KEY
from tests.factories import MembershipFactory, WorkspaceFactory, fake_key
from tests.leaks import database_text

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("WORKER_TEST_BROKER_URL", "redis://127.0.0.1:6379/5")
MAX_RETRIES = 2

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("BYOK_WORKER_TEST"), reason="real-worker test: run `make test-worker`"
    ),
    pytest.mark.django_db(transaction=True),
]


def _wait_for(predicate, *, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RedisMonitor:
    """Record every command the Redis server receives (task messages included)."""

    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url)
        self.commands: list[str] = []
        self._monitor = self.client.monitor()
        self._monitor.__enter__()  # sends MONITOR now, before any task is sent
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            for event in self._monitor.listen():
                self.commands.append(str(event.get("command", "")))
        except Exception:  # noqa: BLE001 - the connection is closed to stop listening
            return

    def start(self) -> "RedisMonitor":
        self._thread.start()
        return self

    def stop(self) -> str:
        self._monitor.connection.disconnect()
        self._thread.join(timeout=5)
        return "\n".join(self.commands)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(BROKER_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"the real-worker test needs Redis at {BROKER_URL}")
    client.flushdb()
    yield BROKER_URL
    client.flushdb()


@pytest.fixture
def worker_env() -> dict[str, str]:
    """Settings a test changes for its worker (parametrize to override)."""
    return {}


@pytest.fixture
def worker(tmp_path, broker, standin, on_postgres, worker_env):
    """Start `celery worker` as its own process on this test's database; stop it after."""
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_READ_DOT_ENV": "false",
        "DJANGO_SECRET_KEY": "worker-test-secret",
        "LLM_KEY_ENCRYPTION_KEYS": django_settings.LLM_KEY_ENCRYPTION_KEYS,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "ANTHROPIC_BASE_URL": standin.url,
        # django-environ drops one leading slash of the path: four make it absolute.
        "EMAIL_URL": f"filemail:///{mail_dir}",
        "SITE_URL": "https://byok.example.com",
        "LLM_KEY_CHECK_TIMEOUT_SECONDS": "1",
        "LLM_KEY_CHECK_MAX_RETRIES": str(MAX_RETRIES),
        "LLM_KEY_CHECK_RETRY_BACKOFF_SECONDS": "0.5",
        "LLM_KEY_CHECK_RATE_PER_MINUTE": "6000",
        "LOG_LEVEL": "DEBUG",
        **worker_env,
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=prefork",
                "--concurrency=2",
                "--loglevel=DEBUG",
                "--without-gossip",
                "--without-mingle",
                "-I",
                "tests.worker.leaky_tasks",
                "-n",
                "worker-test@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(
            lambda: "ready." in log_path.read_text() or process.poll() is not None,
            timeout=60,
            what="the worker to start",
        )
        assert process.poll() is None, log_path.read_text()[-3000:]
        yield {"mail_dir": mail_dir, "log": log_path, "process": process}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _emails(mail_dir: Path) -> list:
    messages = []
    for path in sorted(mail_dir.iterdir()):
        # The file backend writes each message followed by a line of dashes.
        for chunk in path.read_text().split("-" * 79):
            if chunk.strip():
                messages.append(message_from_string(chunk.strip()))
    return messages


def _body(message) -> str:
    payload = message.get_payload(decode=True)
    return payload.decode() if payload else str(message.get_payload())


def test_worker_marks_a_revoked_key_invalid_once_and_keeps_a_529_key(standin, worker, broker):
    acme = WorkspaceFactory(name="Acme", slug="acme")
    admins = [
        MembershipFactory(workspace=acme, role="admin", user__email=f"admin{n}@example.com").user
        for n in (1, 2)
    ]
    MembershipFactory(workspace=acme, role="member", user__email="member@example.com")
    revoked = llm_key_set(workspace=acme, raw_key=SENTINEL_KEY, actor=Actor(user=admins[0]))
    busy_ws = WorkspaceFactory(name="Busy", slug="busy")
    MembershipFactory(workspace=busy_ws, role="admin", user__email="busy-admin@example.com")
    busy_raw = fake_key()
    busy = llm_key_set(workspace=busy_ws, raw_key=busy_raw, actor=Actor(label="test"))
    assert revoked.status == busy.status == KeyStatus.VALID
    standin.set_behavior(SENTINEL_KEY, "revoked")
    standin.set_behavior(busy_raw, "overloaded")
    monitor = RedisMonitor(broker).start()
    client = Celery(broker=broker)

    try:
        client.send_task("llm_keys.tasks.llm_keys_check_all")  # what beat sends

        _wait_for(
            lambda: LLMKey.objects.get(pk=revoked.pk).status == KeyStatus.INVALID,
            timeout=30,
            what="the revoked key to turn invalid",
        )
        _wait_for(
            lambda: (
                KeyEvent.objects.filter(
                    workspace=busy_ws, action=KeyEvent.Action.CHECK_FAILED
                ).count()
                == 1 + MAX_RETRIES
            ),
            timeout=30,
            what="the 529 key's retries",
        )
        _wait_for(lambda: _emails(worker["mail_dir"]), timeout=30, what="the e-mail")

        busy_probes = [r for r in standin.requests if r.api_key == busy_raw]

        # A second sweep finds the key still revoked: no second transition, no second e-mail.
        first_check = LLMKey.objects.get(pk=revoked.pk).last_checked_at
        client.send_task("llm_keys.tasks.llm_keys_check_all")
        _wait_for(
            lambda: LLMKey.objects.get(pk=revoked.pk).last_checked_at > first_check,
            timeout=30,
            what="the second sweep",
        )
        time.sleep(2)  # room for a wrong second e-mail to arrive
    finally:
        client.close()
        commands = monitor.stop()

    assert len(busy_probes) == 1 + (1 + MAX_RETRIES)  # the save, then a try and two retries
    busy.refresh_from_db()
    assert busy.status == KeyStatus.VALID
    assert "overloaded" in busy.last_error

    revoked.refresh_from_db()
    assert revoked.status == KeyStatus.INVALID
    assert "revoked" in revoked.status_reason
    assert KeyEvent.objects.filter(action=KeyEvent.Action.BECAME_INVALID).count() == 1
    emails = _emails(worker["mail_dir"])
    assert len(emails) == 1
    assert sorted(a.strip() for a in emails[0]["To"].split(",")) == [
        "admin1@example.com",
        "admin2@example.com",
    ]
    body = _body(emails[0])
    assert "https://byok.example.com/w/acme/settings/llm-key/" in body
    assert "revoked, has expired or is mistyped" in body

    # Nothing the worker wrote, sent or stored holds the key: not its log (at DEBUG, the SDK
    # and HTTP loggers included), not a task message (every command Redis received), not the
    # e-mail, not a database row.
    worker_log = worker["log"].read_text()
    assert "llm_keys.tasks.llm_key_check" in commands  # the capture did see the messages
    assert "llm_keys.tasks.llm_key_invalid_notify" in commands
    assert "HTTP Request: GET" in worker_log  # the log did capture the provider calls
    for name, text in {
        "worker log": worker_log,
        "redis commands": commands,
        "e-mail": "".join(p.read_text() for p in worker["mail_dir"].iterdir()),
        "database": database_text(),
    }.items():
        assert SENTINEL_KEY not in text, f"the key leaked into the {name}"


def test_the_worker_redacts_a_key_in_messages_exceptions_and_tracebacks(worker, broker):
    """The worker replaces the root log handlers; the redaction must be on its own."""
    client = Celery(broker=broker)
    try:
        client.send_task("tests.leak_the_sentinel")
        _wait_for(
            lambda: "The task fails holding the key" in worker["log"].read_text(),
            timeout=30,
            what="the leaky task to fail",
        )
        time.sleep(0.5)  # the rest of its traceback
    finally:
        client.close()
    log = worker["log"].read_text()
    # The records did reach the log, redacted: the message, both tracebacks, the print.
    assert "A message holding the key sk-ant-[redacted]" in log
    assert "An f-string holding the key sk-ant-[redacted]" in log
    assert "ValueError: An exception holding the key sk-ant-[redacted]" in log
    assert "RuntimeError: The task fails holding the key sk-ant-[redacted]" in log
    assert "printed sk-ant-[redacted]" in log
    assert "Traceback (most recent call last)" in log
    assert SENTINEL_KEY not in log
    assert SENTINEL_KEY[7:] not in log
    # The SDK's DEBUG records (request options: the prompt) are not written at all.
    assert "PROMPT-SENTINEL" not in log


@pytest.mark.parametrize("worker_env", [{"LLM_KEY_CHECK_RATE_PER_MINUTE": "30"}])
def test_checks_wait_for_the_rate_limit_outside_the_task(standin, worker, broker):
    """With more checks than the rate allows at once, each check waits for its permit as a
    queued message with a countdown, not asleep inside the task (where its soft time limit
    would kill it): every task run is short, and all checks are done, spaced at the limit."""
    interval = 60 / (30 * 0.9)  # 2.2 s
    keys = [
        llm_key_set(
            workspace=WorkspaceFactory(slug=f"w{i}", name=f"W{i}"),
            raw_key=fake_key(),
            actor=Actor(label="test"),
            check=False,
        )
        for i in range(6)
    ]
    client = Celery(broker=broker)
    try:
        client.send_task("llm_keys.tasks.llm_keys_check_all")
        _wait_for(
            lambda: all(LLMKey.objects.get(pk=k.pk).last_checked_at for k in keys),
            timeout=60,
            what="every key to be checked",
        )
    finally:
        client.close()
    log = worker["log"].read_text()
    probes = sorted(r.at for r in standin.requests if r.path.startswith("/v1/models"))
    assert len(probes) == 6
    # The limit held: six permits span five intervals (less 10 % for the probes' jitter).
    assert probes[-1] - probes[0] >= 5 * interval * 0.9
    # No task run slept for its permit: each is a probe's time, or a reschedule's.
    runtimes = [
        float(t) for t in re.findall(r"llm_key_check\[[^\]]+\] succeeded in ([0-9.]+)s", log)
    ]
    assert len(runtimes) >= 6 + 4  # six checks, and the reschedules of the ones that waited
    assert max(runtimes) < 1.5, runtimes
    assert "waits" in log and "for its permit" in log
    assert "SoftTimeLimitExceeded" not in log
