"""An unreachable cache does not stop the API (decision 126): the limits are not counted,
the request goes on, and the server log says so."""

import logging
import socket
import subprocess
import sys

import pytest
from django.test import override_settings

from ai_gateway.limits import api_request_admit
from tests.config.test_startup import ROOT, _env
from tests.factories import api_token_for

pytestmark = pytest.mark.django_db

NOWHERE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
    }
}


def test_an_unreachable_cache_admits_the_request_and_logs_it(workspace, caplog):
    token, _raw = api_token_for(workspace)

    with override_settings(CACHES=NOWHERE), caplog.at_level(logging.ERROR):
        slots = api_request_admit(token=token)
        slots.release()

    assert slots.keys == []
    assert "API limits not counted: the cache is unreachable" in caplog.text


def test_a_cache_that_never_answers_holds_a_request_for_about_a_second():
    """The settings give a Redis cache connect and read timeouts: a cache host that accepts
    the connection and then says nothing (a hung server) costs a request about a second, not
    the operating system's TCP timeout."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    port = silent.getsockname()[1]
    code = (
        "import django, time, types; django.setup()\n"
        "from ai_gateway.limits import api_request_admit\n"
        "started = time.monotonic()\n"
        "slots = api_request_admit(token=types.SimpleNamespace(pk=1, workspace_id=1))\n"
        "print(round(time.monotonic() - started, 1), slots.keys)\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=_env(CACHE_URL=f"redis://127.0.0.1:{port}/0"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        silent.close()

    seconds, keys = result.stdout.split(maxsplit=1)
    assert float(seconds) < 5, result.stderr
    assert keys.strip() == "[]"
    assert "API limits not counted: the cache is unreachable" in result.stderr
