"""`make run` starts without warnings (issue 21): its steps (a fresh `.env`, migrate,
demo_setup, then web, worker and beat under scripts/run_dev.py) print no warning, error or
traceback before "Ready". Run in a copy of the checkout, so that its var/ (the broker's
folder, beat's schedule) and its `.env` are its own and a developer's `make run` is left
alone."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.served import free_port

ROOT = Path(__file__).resolve().parents[2]
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "var", "__pycache__", "*.sqlite3", ".env", ".*_cache", "test-output"
)
PROBLEM = re.compile(r"warn|\berror\b|traceback|no hostname|unrecoverable", re.I)
READY = "Ready: web, worker and beat are up"

pytestmark = pytest.mark.served


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    env.pop("DATABASE_URL", None)
    env.pop("LLM_KEY_ENCRYPTION_KEYS", None)
    return {
        **env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }


def _run_until_ready(checkout: Path, env: dict[str, str], log_path: Path) -> str:
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "scripts/run_dev.py"],
            cwd=checkout,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 150
        while READY not in log_path.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return log_path.read_text()


def test_make_run_starts_without_warnings(tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=NOT_COPIED)
    env = _environment(tmp_path)
    output = []
    for step in (["scripts/dev_env.py"], ["manage.py", "migrate"], ["manage.py", "demo_setup"]):
        done = subprocess.run(
            [sys.executable, *step], cwd=checkout, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        output.append(done.stdout + done.stderr)

    run = _run_until_ready(checkout, env, tmp_path / "run.log")

    assert READY in run
    started = "\n".join(output) + run.split(READY)[0]
    assert [line for line in started.splitlines() if PROBLEM.search(line)] == []
