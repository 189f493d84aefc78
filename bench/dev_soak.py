"""Soak `make run`: its processes (scripts/run_dev.py: web, worker, beat on the filesystem
broker) with the periodic key check every minute and a few dozen keys, against the
Anthropic stand-in, for a given number of minutes; then report lost or corrupted tasks and
any process that died (issue 21).

    .venv/bin/python bench/dev_soak.py [--minutes 60] [--keys 36] [--port 8790]

- **Lost**: every sweep the worker finished queued one check per stored key; each soak key
  must then have one recorded check (a KeyEvent) per finished sweep. A key with fewer is a
  lost task; more is a duplicate (reported, harmless: checks are idempotent).
- **Corrupted**: a broker message that does not parse, or a process log line with
  ``JSONDecodeError``, ``Unrecoverable error`` or ``Traceback``.
- **Died**: every "exited with" line of the supervisor, the supervisor itself gone, and the
  web server's answers to a request every 5 s.

The web server runs with `--reload`, as under `make run`: editing the checkout's Python
files during a soak restarts it (probes then fail). Uses the database of DATABASE_URL (as
`make run` does, created if missing) and the checkout's ``.env`` (its key ring); adds
workspaces ``soak-<n>`` with one key each and deletes them at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLUG = "soak-"
PROBLEM = re.compile(r"JSONDecodeError|Unrecoverable error|Traceback")
SWEEP_DONE = re.compile(
    r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+: \w+/[\w-]+\] "
    r"Task llm_keys\.tasks\.llm_keys_check_all\[[^\]]+\] succeeded"
)
GRACE_SECONDS = 30


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()


def _store_keys(count: int) -> list[int]:
    from llm_keys.crypto import get_key_ring
    from llm_keys.models import KeyStatus, LLMKey, associated_data_for
    from tests.factories import fake_key
    from workspaces.models import Workspace

    Workspace.objects.filter(slug__startswith=SLUG).delete()
    workspaces = Workspace.objects.bulk_create(
        Workspace(name=f"Soak {n}", slug=f"{SLUG}{n}") for n in range(count)
    )
    ring = get_key_ring()
    rows = []
    for workspace in workspaces:
        raw = fake_key()
        sealed = ring.encrypt(raw, associated_data_for(workspace.pk, "anthropic"))
        rows.append(
            LLMKey(
                workspace=workspace,
                provider="anthropic",
                ciphertext=sealed.ciphertext,
                encryption_key_id=sealed.key_id,
                hint=raw[-4:],
                status=KeyStatus.VALID,
            )
        )
    LLMKey.objects.bulk_create(rows)
    return [w.pk for w in workspaces]


def _checks_per_key(workspace_ids: list[int], until: datetime) -> dict[int, int]:
    from django.db.models import Count

    from llm_keys.models import KeyEvent

    counted = (
        KeyEvent.objects.filter(
            workspace_id__in=workspace_ids,
            created_at__lte=until,
            action__in=[
                KeyEvent.Action.CHECKED,
                KeyEvent.Action.BECAME_VALID,
                KeyEvent.Action.BECAME_INVALID,
                KeyEvent.Action.CHECK_FAILED,
            ],
        )
        .values("workspace_id")
        .annotate(n=Count("id"))
    )
    checks = dict.fromkeys(workspace_ids, 0)
    checks.update({row["workspace_id"]: row["n"] for row in counted})
    return checks


def _unreadable_messages() -> int:
    broken = 0
    for path in (ROOT / "var" / "celery-broker").glob("*.msg"):
        try:
            json.loads(path.read_bytes())
        except (ValueError, OSError):
            broken += 1
    return broken


def _web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--keys", type=int, default=36)
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--standin-port", type=int, default=8791)
    parser.add_argument("--log", default=str(ROOT / "var" / "dev_soak.log"))
    args = parser.parse_args()

    _django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    workspace_ids = _store_keys(args.keys)
    log_path = Path(args.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PORT": str(args.port),
        "LLM_KEY_CHECK_INTERVAL_MINUTES": "1",
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{args.standin_port}",
    }
    standin = subprocess.Popen(
        [sys.executable, "tests/anthropic_standin.py", f"--port={args.standin_port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with log_path.open("w") as log:
        run = subprocess.Popen(
            [sys.executable, "scripts/run_dev.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: Ctrl-C-like stop of all its processes
        )
    probes = failed_probes = 0
    supervisor_alive = True
    try:
        ready_by = time.monotonic() + 120
        while not _web_answers(args.port) and time.monotonic() < ready_by:
            time.sleep(1)  # the web server's start is not part of the soak
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:
            probes += 1
            failed_probes += not _web_answers(args.port)
            if run.poll() is not None:
                supervisor_alive = False
                break
            time.sleep(5)
        stopped_at = datetime.now(UTC)
        time.sleep(GRACE_SECONDS)  # checks queued by the last sweep finish
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
        standin.terminate()
        standin.wait(timeout=10)

    text = log_path.read_text(errors="replace")
    sweeps = [
        datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        for m in SWEEP_DONE.finditer(text)
    ]
    # Every sweep of this run (the keys were stored before it began) finished by the end of
    # the soak; the checks it queued had the grace to finish.
    expected = sum(1 for s in sweeps if s <= stopped_at)
    checks = _checks_per_key(workspace_ids, stopped_at + timedelta(seconds=GRACE_SECONDS))
    lost = sum(max(0, expected - n) for n in checks.values())
    duplicates = sum(max(0, n - expected) for n in checks.values())
    problems = [line for line in text.splitlines() if PROBLEM.search(line)]
    deaths = [line for line in text.splitlines() if "exited with" in line]
    unreadable = _unreadable_messages()

    from workspaces.models import Workspace

    Workspace.objects.filter(slug__startswith=SLUG).delete()

    print(f"Soak of make run's processes: {args.minutes:g} min, {args.keys} keys, checks every min")
    print(f"  sweeps finished by the worker: {expected}")
    print(f"  key checks recorded: {sum(checks.values())} (expected {expected * args.keys})")
    print(f"  lost checks: {lost}   duplicate checks: {duplicates}")
    print(f"  corrupted: {unreadable} unreadable broker messages, {len(problems)} error lines")
    print(f"  processes that died: {len(deaths)}; supervisor alive to the end: {supervisor_alive}")
    print(f"  web server: {probes - failed_probes} of {probes} probes answered")
    for line in (problems + deaths)[:10]:
        print(f"    {line}")
    ok = (
        expected > 0
        and not lost
        and not unreadable
        and not problems
        and not deaths
        and supervisor_alive
        and not failed_probes
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
