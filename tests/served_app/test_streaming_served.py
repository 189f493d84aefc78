"""Streaming through the server users run: ``make serve`` (uvicorn, production settings) and
``make run``'s web command (uvicorn with autoreload). The test client alone once hid a bug
every streamed request hit under a real server."""

import json

import pytest

from scripts.run_dev import web_command
from tests.served import PLATFORM_KEY, free_port, sse_events

pytestmark = pytest.mark.served

QUESTION = {
    "model": "claude-sonnet-5",
    "max_tokens": 200,
    "messages": [{"role": "user", "content": "Tell me about rivers"}],
    "stream": True,
}


def _stream(client, slug):
    with client.stream(
        "POST",
        f"/api/v1/w/{slug}/messages",
        json=QUESTION,
        headers={"X-CSRFToken": client.cookies["csrftoken"]},
    ) as response:
        return response, list(sse_events(response))


def _check_relayed(events):
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "content_block_start"]
    assert names[-4:] == ["content_block_stop", "message_delta", "message_stop", "gateway"]
    text = "".join(
        json.loads(data)["delta"]["text"] for name, data in events if name == "content_block_delta"
    )
    assert text == "Stand-in reply to: Tell me about rivers"
    return json.loads(events[-1][1])


def test_make_serve_streams_a_byok_answer_as_events(served, standin):
    app = served
    app.workspace("byok", admin="admin@byok.test")
    byok_key = "sk-ant-api03-served0byok0key0000000000000000000000000000ABCD"
    app.manage("set_llm_key", "byok", "--no-check", stdin=byok_key + "\n")
    client = app.login("admin@byok.test")

    response, events = _stream(client, "byok")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["x-credential-source"] == "byok"
    assert response.headers["request-id"].startswith("req_standin_")
    trailer = _check_relayed(events)
    assert trailer == {"type": "gateway", "credential_source": "byok", "credits_charged": 0}
    assert [r.api_key for r in standin.requests if r.path == "/v1/messages"] == [byok_key]
    assert app.database.rows(
        "SELECT outcome, credential_source, credits_charged, stream FROM ai_gateway_airequest"
        " JOIN workspaces_workspace w ON w.id = workspace_id WHERE w.slug = 'byok'"
    ) == [("ok", "byok", 0, True)]


def test_make_serve_streams_and_settles_a_credits_answer(served, standin):
    app = served
    app.workspace("credits", admin="admin@credits.test")
    app.manage("grant_credits", "credits", "500000", "--reason", "served test")
    client = app.login("admin@credits.test")

    response, events = _stream(client, "credits")

    assert response.status_code == 200
    assert response.headers["x-credential-source"] == "platform"
    trailer = _check_relayed(events)
    assert trailer["credential_source"] == "platform"
    assert trailer["credits_charged"] > 0
    assert standin.keys_seen() == [PLATFORM_KEY]
    of_workspace = "workspace_id = (SELECT id FROM workspaces_workspace WHERE slug = 'credits')"
    kinds = app.database.rows(
        f"SELECT kind FROM credits_creditentry WHERE {of_workspace} ORDER BY id"
    )
    assert kinds == [("grant",), ("hold",), ("settle",)]
    [(charged,)] = app.database.rows(
        f"SELECT credits_charged FROM ai_gateway_airequest WHERE {of_workspace}"
    )
    assert charged == trailer["credits_charged"]
    [(balance,)] = app.database.rows(
        f"SELECT balance FROM credits_creditaccount WHERE {of_workspace}"
    )
    assert balance == 500000 - charged


def test_make_run_web_server_streams_too(served_dev, standin):
    app = served_dev
    app.workspace("dev", admin="admin@dev.test")
    app.manage("grant_credits", "dev", "500000", "--reason", "served test")
    client = app.login("admin@dev.test")

    response, events = _stream(client, "dev")

    assert response.status_code == 200
    assert _check_relayed(events)["credits_charged"] > 0
    assert "--reload" in web_command("1")
    assert "WatchFiles" in app.log()  # the autoreloader is watching the project


@pytest.mark.parametrize(
    ("name", "value"),
    [("LLM_KEY_ENCRYPTION_KEYS", ""), ("WEB_KEEPALIVE", "a minute"), ("WEB_CONCURRENCY", "0")],
)
def test_make_serve_refuses_to_start_on_a_bad_setting(
    served_database, standin, tmp_path, name, value
):
    import subprocess

    from tests.served import ROOT, served_environment

    env = served_environment(served_database, standin.url, free_port())
    env[name] = value
    done = subprocess.run(
        ["make", "--no-print-directory", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    refusal = [line for line in done.stderr.splitlines() if "refusing to start" in line]
    assert len(refusal) == 1
    assert name in refusal[0]
    assert "Traceback" not in done.stderr
