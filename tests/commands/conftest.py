import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    stdout: str
    stderr: str
    error: (
        str | None
    )  # the CommandError message, i.e. what the operator sees after "CommandError: "

    @property
    def text(self) -> str:
        return "\n".join([self.stdout, self.stderr, self.error or ""])


def run(name: str, *args: str, stdin: str | io.StringIO = "") -> Outcome:
    """Run a command in-process as an operator would, catching the error it would exit with."""
    stdout, stderr = io.StringIO(), io.StringIO()
    stream = io.StringIO(stdin) if isinstance(stdin, str) else stdin
    error = None
    kwargs = {"stdout": stdout, "stderr": stderr}
    if name == "set_llm_key":
        kwargs["stdin"] = stream
    try:
        call_command(name, *args, **kwargs)
    except CommandError as exc:
        error = str(exc)
        assert "\n" not in error.strip(), f"a multi-line error: {error!r}"
    return Outcome(stdout.getvalue(), stderr.getvalue(), error)


@pytest.fixture
def run_command():
    return run


def manage(*args: str, env: dict | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    """Run manage.py in a child process, as an operator's shell would."""
    child_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", **(env or {})}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=child_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def manage_py():
    return manage
