"""The sentinel key is redacted in what a command and the web server write, exception text
and tracebacks included (the worker's own: tests/worker/test_worker.py)."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from llm_keys.crypto import generate_entry
from tests.conftest import GEMINI_SENTINEL_KEY, OPENAI_SENTINEL_KEY, SENTINEL_KEY
from tests.served import free_port, uvicorn_command

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LLM_KEY_"))}
    env.update(
        DJANGO_READ_DOT_ENV="false",
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY="a-secret-for-the-leak-test-only",
        LLM_KEY_ENCRYPTION_KEYS=generate_entry("leak"),
        DATABASE_URL="sqlite:///:memory:",
        LOG_LEVEL="DEBUG",
        **extra,
    )
    return env


def test_a_command_redacts_a_key_in_its_log_and_its_crash():
    code = (
        "import logging\n"
        f"key = {SENTINEL_KEY!r}\n"
        "log = logging.getLogger('llm_keys.leak_test')\n"
        "log.debug('message %s', key)\n"
        "try:\n"
        "    raise ValueError('inner ' + key)\n"
        "except ValueError:\n"
        "    log.exception('caught')\n"
        "logging.getLogger('anthropic._base_client').debug('Request options: PROMPT-SENTINEL')\n"
        "logging.getLogger('openai._base_client').debug('Request options: PROMPT-SENTINEL')\n"
        "logging.getLogger('google_genai._api_client').debug('Request: PROMPT-SENTINEL')\n"
        f"log.warning('openai %s gemini %s', {OPENAI_SENTINEL_KEY!r}, {GEMINI_SENTINEL_KEY!r})\n"
        "raise RuntimeError('crash ' + key)\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "message sk-ant-[redacted]" in output
    assert "ValueError: inner sk-ant-[redacted]" in output
    assert "RuntimeError: crash sk-ant-[redacted]" in output
    assert output.count("Traceback (most recent call last)") >= 2
    assert SENTINEL_KEY not in output
    assert "openai sk-[redacted] gemini AIza[redacted]" in output
    assert OPENAI_SENTINEL_KEY not in output and GEMINI_SENTINEL_KEY not in output
    assert "PROMPT-SENTINEL" not in output


def test_the_web_server_redacts_a_key_in_a_logged_traceback(tmp_path):
    port = free_port()
    log_path = tmp_path / "web.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            uvicorn_command(port),
            cwd=ROOT,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        # Django refuses the Host with an exception whose text holds it; the server logs
        # that exception with its traceback.
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/login/", headers={"Host": SENTINEL_KEY}
        )
        try:
            urllib.request.urlopen(request, timeout=90)
        except urllib.error.HTTPError as error:
            assert error.code == 400
            assert SENTINEL_KEY not in error.read().decode()
        time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    output = log_path.read_text()
    assert "DisallowedHost: Invalid HTTP_HOST header: 'sk-ant-[redacted]'" in output
    assert "Traceback (most recent call last)" in output
    assert SENTINEL_KEY not in output
