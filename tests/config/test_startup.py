"""Production refuses to start without usable settings: the ASGI and WSGI entry points (what
`make serve` and any server import) exit with one clear line; generate_encryption_key, which
is how one makes a ring, works without one."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_keys.crypto import KeyRing, generate_entry
from tests.conftest import SENTINEL_KEY
from tests.served import free_port, uvicorn_command

ROOT = Path(__file__).resolve().parents[2]
GOOD_RING = generate_entry("prod")
GOOD_ENV = {
    "DJANGO_READ_DOT_ENV": "false",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-for-this-test-only",
    "LLM_KEY_ENCRYPTION_KEYS": GOOD_RING,
    "DATABASE_URL": "sqlite:///:memory:",
    "PLATFORM_ANTHROPIC_API_KEY": SENTINEL_KEY,
}


def _env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LLM_KEY_"))}
    env.update(GOOD_ENV)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _import(module: str, **changes: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        env=_env(**changes),
        capture_output=True,
        text=True,
        timeout=60,
    )


BAD = [
    pytest.param(
        {"LLM_KEY_ENCRYPTION_KEYS": None}, "LLM_KEY_ENCRYPTION_KEYS is not set", id="no ring"
    ),
    pytest.param(
        {"LLM_KEY_ENCRYPTION_KEYS": ""}, "LLM_KEY_ENCRYPTION_KEYS is not set", id="empty ring"
    ),
    pytest.param(
        {"LLM_KEY_ENCRYPTION_KEYS": f"{GOOD_RING}\n{generate_entry('b')}"},
        "line break",
        id="newline-separated ring",
    ),
    pytest.param(
        {"LLM_KEY_ENCRYPTION_KEYS": GOOD_RING + "%"}, "not valid base64", id="stray character"
    ),
    pytest.param({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY is not set", id="no secret key"),
]


@pytest.mark.parametrize("module", ["config.asgi", "config.wsgi"])
@pytest.mark.parametrize(("changes", "message"), BAD)
def test_the_entry_points_refuse_bad_production_settings(module, changes, message):
    result = _import(module, **changes)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Refusing to start: ")
    assert message in lines[0]
    assert SENTINEL_KEY not in result.stderr + result.stdout
    assert GOOD_RING.split(":")[1] not in result.stderr


@pytest.mark.parametrize("module", ["config.asgi", "config.wsgi"])
def test_the_entry_points_start_with_good_settings(module):
    result = _import(module)
    assert result.returncode == 0, result.stderr
    assert "Refusing" not in result.stderr


def test_development_may_start_without_a_ring():
    result = _import("config.asgi", DJANGO_DEBUG="true", LLM_KEY_ENCRYPTION_KEYS=None)
    assert result.returncode == 0, result.stderr


def test_a_real_server_exits_non_zero_without_a_ring():
    result = subprocess.run(
        uvicorn_command(free_port()),
        cwd=ROOT,
        env=_env(LLM_KEY_ENCRYPTION_KEYS=""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Refusing to start: LLM_KEY_ENCRYPTION_KEYS is not set" in result.stderr


def test_generate_encryption_key_works_without_a_ring():
    result = subprocess.run(
        [sys.executable, "manage.py", "generate_encryption_key", "--id", "first"],
        cwd=ROOT,
        env=_env(LLM_KEY_ENCRYPTION_KEYS=None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    entry = result.stdout.strip()
    assert KeyRing.parse(entry).primary_id == "first"


def test_generate_encryption_key_works_beside_a_broken_ring():
    result = subprocess.run(
        [sys.executable, "manage.py", "generate_encryption_key"],
        cwd=ROOT,
        env=_env(LLM_KEY_ENCRYPTION_KEYS="k1:AAAA"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert KeyRing.parse(result.stdout.strip())


def test_the_check_runs_alone_before_a_server_starts():
    run = [sys.executable, "-m", "config.checks"]
    bad = subprocess.run(
        run, cwd=ROOT, env=_env(DJANGO_SECRET_KEY=""), capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "Refusing to start: DJANGO_SECRET_KEY is not set: set it to a long random value (not "
        "in DEBUG, there is no default)."
    ]
    good = subprocess.run(run, cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert good.returncode == 0, good.stderr


SDKS = ("anthropic", "openai", "google.genai")
SDKS_IMPORTED = f"import sys; print(sorted(m for m in {SDKS!r} if m in sys.modules))"


def test_a_command_that_calls_no_provider_does_not_import_their_sdks():
    """About 2.5 s of imports a command (create_api_token, grant_credits) does not need."""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", SDKS_IMPORTED],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("entry_point", ["config.asgi", "config.wsgi"])
def test_the_web_application_imports_every_sdk_before_its_first_request(entry_point):
    done = _import(f"{entry_point}; {SDKS_IMPORTED}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sorted(SDKS))
