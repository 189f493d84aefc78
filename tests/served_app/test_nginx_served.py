"""``make serve`` behind nginx with deploy/nginx.conf (README "Serving the web app"): slow or
stalled clients are closed by the proxy after its timeout, while a stream through it is
relayed event by event and charged (SPEC §17)."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import anthropic
import httpx2
import pytest

from tests.served import ROOT, free_port, sse_events

pytestmark = pytest.mark.served

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
)
CLIENT_TIMEOUT = 2  # seconds: client_header_timeout and friends, short for the test
SLOW_CLIENTS = 100
SPACING = 0.3  # seconds between the stand-in's stream events


def render(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("${" + name + "}", value)
    assert "${BYOK_" not in template, "a variable of the template was left unset"
    return template


@pytest.fixture(scope="module")
def nginx(served, tmp_path_factory):
    """nginx of its own (own prefix, pid, logs and temp paths) in front of ``make serve``."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run installs it)")
    prefix: Path = tmp_path_factory.mktemp("nginx")
    prefix.chmod(0o755)  # workers may run as another user when started by root
    port = free_port()
    site = render(
        (ROOT / "deploy" / "nginx.conf").read_text(),
        BYOK_LISTEN=f"127.0.0.1:{port}",
        BYOK_UPSTREAM=served.url.removeprefix("http://"),
        BYOK_MAX_BODY=str(32 * 1024 * 1024),
        BYOK_CLIENT_TIMEOUT=str(CLIENT_TIMEOUT),
        BYOK_KEEPALIVE_TIMEOUT="5",
        BYOK_STREAM_TIMEOUT="60",
    )
    (prefix / "site.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"""daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix / "access.log"};
{temp}
    include {prefix / "site.conf"};
}}
"""
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=(prefix / "stderr.log").open("wb"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx2.HTTPError:
            time.sleep(0.1)
    else:
        process.kill()
        errors = (prefix / "stderr.log").read_text() + (prefix / "error.log").read_text()
        raise AssertionError(f"nginx did not answer /healthz:\n{errors}")
    yield url
    process.terminate()
    process.wait(timeout=10)


def stall(port: int) -> socket.socket:
    """A slow-loris client: half a request head, then silence."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-")
    return sock


def seconds_until_closed(sock: socket.socket, started: float) -> float:
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
    return time.monotonic() - started


def test_stalled_clients_are_closed_while_a_stream_is_relayed(served, nginx, standin):
    served.workspace("behind-nginx", admin="admin@behind-nginx.test")
    served.manage("grant_credits", "behind-nginx", "5000000", "--reason", "served test")
    token = served.api_token("behind-nginx", "ci")
    standin.state.stream_word_delay = 0.3  # a stream of ~2.5 s, longer than the timeout
    port = int(nginx.rsplit(":", 1)[1])

    started = time.monotonic()
    stalled = [stall(port) for _ in range(SLOW_CLIENTS)]
    closed: list[float] = []
    watchers = [
        threading.Thread(target=lambda s=s: closed.append(seconds_until_closed(s, started)))
        for s in stalled
    ]
    for watcher in watchers:
        watcher.start()

    client = anthropic.Anthropic(base_url=f"{nginx}/anthropic", api_key=token, max_retries=0)
    arrivals: list[float] = []
    with client.messages.stream(
        model="claude-sonnet-5",
        max_tokens=64,
        messages=[{"role": "user", "content": "one two three four five six seven eight"}],
    ) as stream:
        for _event in stream:
            arrivals.append(time.monotonic())
        final = stream.get_final_message()
    for watcher in watchers:
        watcher.join(timeout=30)

    assert final.stop_reason == "end_turn"
    # Relayed as it came: the first event well before the last, not all at once at the end.
    assert arrivals[-1] - arrivals[0] > 1.0, arrivals
    assert len(closed) == SLOW_CLIENTS
    assert max(closed) < CLIENT_TIMEOUT + 3, sorted(closed)[-5:]
    assert min(closed) >= CLIENT_TIMEOUT - 0.5, sorted(closed)[:5]
    [(outcome, charged)] = served.database.rows(
        "SELECT r.outcome, r.credits_charged FROM ai_gateway_airequest r"
        " JOIN workspaces_workspace w ON w.id = r.workspace_id WHERE w.slug = 'behind-nginx'"
    )
    assert outcome == "ok" and charged > 0


def test_a_streams_events_reach_the_client_as_they_are_produced(served, nginx, standin):
    """Through nginx, each event arrives when the stand-in sends it (~300 ms apart), and the
    first byte long before the stream ends: nothing is held back until the end."""
    served.workspace("nginx-relay", admin="admin@nginx-relay.test")
    served.manage("grant_credits", "nginx-relay", "5000000", "--reason", "served test")
    token = served.api_token("nginx-relay", "ci")
    standin.state.stream_word_delay = SPACING
    body = {
        "model": "claude-sonnet-5",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "one two three four five six seven eight"}],
    }

    started = time.monotonic()
    arrivals: list[tuple[str, float]] = []
    with httpx2.stream(
        "POST",
        f"{nginx}/anthropic/v1/messages",
        json=body,
        headers={"x-api-key": token},
        timeout=30,
    ) as response:
        for event, _data in sse_events(response):
            arrivals.append((event, time.monotonic() - started))
    ended_at = time.monotonic() - started

    assert response.status_code == 200
    first_event, first_byte_at = arrivals[0]
    assert first_event == "message_start"
    deltas = [at for event, at in arrivals if event == "content_block_delta"]
    assert len(deltas) >= 6, arrivals
    # The stand-in sends the first delta at once, then one every SPACING seconds: the
    # answer takes (deltas - 1) x SPACING, and its first byte comes before all of that.
    assert ended_at >= (len(deltas) - 1) * SPACING
    assert first_byte_at < ended_at - (len(deltas) - 2) * SPACING, (first_byte_at, ended_at)
    gaps = [later - earlier for earlier, later in itertools.pairwise(deltas)]
    assert min(gaps) > SPACING / 2, gaps
