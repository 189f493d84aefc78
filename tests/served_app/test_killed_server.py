"""A server process killed in the middle of a request (SIGKILL: no code of ours runs) leaves
its hold open; the periodic stale-hold sweep charges it whole with an entry saying why, and
writes the request's usage row (docs/decisions/107)."""

import contextlib
import os
import signal
import threading
import time

import httpx2
import pytest

from tests.served import make_serve_command, start

pytestmark = pytest.mark.served

SWEEP = (
    "import datetime; from credits.services import credits_release_stale_holds; "
    "print(credits_release_stale_holds(older_than=datetime.timedelta(0)))"
)


def test_a_hold_left_by_a_killed_server_is_charged_by_the_sweep(served_database, standin, tmp_path):
    app = start(
        make_serve_command,
        database=served_database,
        standin_url=standin.url,
        log_path=tmp_path / "killed.log",
    )
    try:
        app.workspace("killed", admin="admin@killed.test")
        app.manage("grant_credits", "killed", "500000", "--reason", "served test")
        client = app.login("admin@killed.test")
        standin.state.latency = 30.0  # the provider takes its time: the request is held open

        def ask():
            with contextlib.suppress(httpx2.HTTPError):  # the server dies under it
                client.post(
                    "/api/v1/w/killed/messages",
                    json={
                        "model": "claude-sonnet-5",
                        "max_tokens": 100,
                        "messages": [{"role": "user", "content": "Take your time"}],
                    },
                    headers={"X-CSRFToken": client.cookies["csrftoken"]},
                    timeout=60,
                )

        asking = threading.Thread(target=ask)
        asking.start()
        of_workspace = "workspace_id = (SELECT id FROM workspaces_workspace WHERE slug = 'killed')"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not app.database.rows(
            f"SELECT id FROM credits_creditentry WHERE kind = 'hold' AND {of_workspace}"
        ):
            time.sleep(0.1)
        os.killpg(app.process.pid, signal.SIGKILL)
        app.process.wait()
        asking.join()

        kinds = app.database.rows(
            f"SELECT kind FROM credits_creditentry WHERE {of_workspace} ORDER BY id"
        )
        assert kinds == [("grant",), ("hold",)]  # nothing closed the hold
        assert app.manage("shell", "-v0", "-c", SWEEP).strip() == "1"
        [(charged, reason)] = app.database.rows(
            f"SELECT e.charged, e.reason FROM credits_creditentry e"
            f" WHERE e.kind = 'settle' AND e.{of_workspace}"
        )
        [(held,)] = app.database.rows(
            f"SELECT amount FROM credits_creditentry WHERE kind = 'hold' AND {of_workspace}"
        )
        assert charged == -held
        assert "stale-hold sweep" in reason
        [(balance,)] = app.database.rows(
            f"SELECT balance FROM credits_creditaccount WHERE {of_workspace}"
        )
        assert balance == 500000 + held
        assert app.database.rows(
            f"SELECT outcome, credits_charged FROM ai_gateway_airequest WHERE {of_workspace}"
        ) == [("process_died", -held)]
        assert app.manage("shell", "-v0", "-c", SWEEP).strip() == "0"  # a second sweep does nothing
    finally:
        standin.state.latency = 0.0
        app.stop()
