"""The official TypeScript SDK (``make anthropic-sdk-ts``, pinned in the Makefile) against
``make serve`` and the stand-in: its basic calls, its auto-pagination and its retry rules
through the gateway, as a node program would make them."""

import json
import os
import subprocess

import pytest

from tests.served import ROOT, npm_installed

pytestmark = pytest.mark.served

SDK_DIR = ROOT / "var" / "anthropic-sdk-ts"
SCRIPT = ROOT / "tests" / "served_app" / "typescript_sdk_calls.cjs"
BYOK_KEY = "sk-ant-api03-served0ts0sdk0byok0key000000000000000000000000TSDK"


@pytest.fixture(scope="module")
def sdk_dir():
    """The SDK's node_modules, installed by ``make anthropic-sdk-ts`` if they are not yet."""
    package = SDK_DIR / "node_modules" / "@anthropic-ai" / "sdk"
    npm_installed(package, make_target="anthropic-sdk-ts", package="@anthropic-ai/sdk")
    return SDK_DIR / "node_modules"


@pytest.fixture(scope="module")
def tokens(served):
    served.workspace("ts-credits", admin="admin@ts-credits.test")
    served.manage("grant_credits", "ts-credits", "5000000", "--reason", "served test")
    served.workspace("ts-byok", admin="admin@ts-byok.test")
    served.manage("set_llm_key", "ts-byok", "--no-check", stdin=BYOK_KEY + "\n")
    return {slug: served.api_token(slug, "node") for slug in ("ts-credits", "ts-byok")}


def run_node(sdk_dir, served, token: str, scenario: str) -> dict:
    done = subprocess.run(
        ["node", str(SCRIPT), scenario],
        env={
            "PATH": os.environ["PATH"],
            "NODE_PATH": str(sdk_dir),
            "GATEWAY_URL": f"{served.url}/anthropic",
            "GATEWAY_TOKEN": token,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_messages_create(sdk_dir, served, tokens, standin):
    outcome = run_node(sdk_dir, served, tokens["ts-credits"], "create")

    assert outcome["result"]["stop_reason"] == "end_turn"
    assert outcome["result"]["text"]
    assert outcome["sent"] == ["POST /anthropic/v1/messages"]
    assert [request.path for request in standin.requests] == ["/v1/messages"]


def test_a_stream(sdk_dir, served, tokens):
    outcome = run_node(sdk_dir, served, tokens["ts-credits"], "stream")

    events = outcome["result"]["events"]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events.count("content_block_delta") >= 2
    assert outcome["result"]["stop_reason"] == "end_turn"
    assert outcome["sent"] == ["POST /anthropic/v1/messages"]


def test_models_list_pages_through_every_model(sdk_dir, served, tokens, standin):
    outcome = run_node(sdk_dir, served, tokens["ts-credits"], "models")

    assert outcome["result"]["ids"] == ["claude-sonnet-5", "claude-haiku-4-5", "claude-opus-5"]
    # Two pages of two: the second asked with after_id, and no third.
    assert outcome["sent"] == ["GET /anthropic/v1/models"] * 2
    assert [request.path for request in standin.requests] == [
        "/v1/models?limit=2",
        "/v1/models?after_id=claude-haiku-4-5&limit=2",
    ]


def test_a_bad_token_is_raised_after_one_request_with_default_retries(sdk_dir, served):
    outcome = run_node(sdk_dir, served, "unused", "unauthorized")

    assert outcome["error"] == {
        "class": "AuthenticationError",
        "status": 401,
        "type": "authentication_error",
    }
    assert outcome["sent"] == ["GET /anthropic/v1/models"]
    assert outcome["seconds"] < 2


def test_an_overload_arrives_as_overloaded_error_after_one_request(
    sdk_dir, served, tokens, standin
):
    standin.set_behavior(BYOK_KEY, "overloaded")

    outcome = run_node(sdk_dir, served, tokens["ts-byok"], "overloaded")

    assert outcome["error"] == {
        "class": "OverloadedError",
        "status": 529,
        "type": "overloaded_error",
    }
    assert outcome["sent"] == ["POST /anthropic/v1/messages"]
    assert len(standin.requests) == 1
