"""``make serve``'s gunicorn configuration (config/gunicorn.py, decision 092): what gunicorn
itself reads from the environment, the uvicorn options of its workers, and the collector
hooks around the fork. Each check runs in a process of its own: loading the configuration
disables the collector of the process that loads it, as it should in gunicorn's master."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.served import ROOT


def _run(args: list[str], **env: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _gunicorn_settings(**env: str) -> dict[str, str]:
    """The effective settings, as gunicorn prints them (``--print-config``)."""
    out = _run(["-m", "gunicorn", "--config=python:config.gunicorn", "--print-config"], **env)
    return {
        name.strip(): value.strip()
        for name, _, value in (line.partition("=") for line in out.splitlines())
        if value
    }


def test_gunicorn_reads_the_knobs_from_the_environment():
    settings = _gunicorn_settings(
        WEB_CONCURRENCY="3",
        HOST="0.0.0.0",
        PORT="9123",
        WEB_GRACEFUL_TIMEOUT="7",
        WEB_KEEPALIVE="9",
        FORWARDED_ALLOW_IPS="10.0.0.1",
        UVICORN_ACCESS_LOG="true",
        UVICORN_LOG_LEVEL="warning",
    )

    assert settings["workers"] == "3"
    assert settings["bind"] == "['0.0.0.0:9123']"
    assert settings["graceful_timeout"] == "7"
    assert settings["keepalive"] == "9"
    assert settings["forwarded_allow_ips"] == "['10.0.0.1']"
    assert settings["accesslog"] == "-"
    assert settings["loglevel"] == "warning"


def test_the_workers_are_uvicorn_forked_from_a_preloaded_application():
    settings = _gunicorn_settings(PORT="9124", UVICORN_ACCESS_LOG="false")

    assert settings["wsgi_app"] == "config.asgi:application"
    assert settings["worker_class"] == "config.gunicorn.Worker"
    assert settings["preload_app"] == "True"
    assert settings["accesslog"] == "None"
    # Idle connections outlive a proxy's 60 s idle timeout, not gunicorn's 2 s default.
    assert settings["keepalive"] == "75"
    # One fixed path per user: two servers on one machine would share it.
    assert settings["control_socket_disable"] == "True"


PROBE = """
import gc, json, sys
import config.gunicorn as conf
report = {"enabled_after_load": gc.isenabled(), "options": conf.Worker.CONFIG_KWARGS}
conf.pre_fork(None, None)
report["frozen"] = gc.get_freeze_count()
conf.post_fork(None, None)
report["enabled_in_worker"] = gc.isenabled()
print(json.dumps(report))
"""


def test_the_collector_is_off_in_the_master_frozen_at_the_fork_and_on_in_workers():
    report = json.loads(_run(["-c", PROBE]))

    assert report["enabled_after_load"] is False
    assert report["frozen"] > 10_000  # the modules loaded so far, out of the collector's reach
    assert report["enabled_in_worker"] is True


def test_uvicorn_trusts_proxy_headers_only_behind_the_tls_proxy():
    default = json.loads(
        _run(["-c", PROBE], DJANGO_BEHIND_TLS_PROXY="false", UVICORN_ACCESS_LOG="false")
    )["options"]
    behind = json.loads(_run(["-c", PROBE], DJANGO_BEHIND_TLS_PROXY="true"))["options"]

    assert default["proxy_headers"] is False
    assert behind["proxy_headers"] is True
    assert default["lifespan"] == "off"
    assert default["access_log"] is False
