"""Claude Code itself through the gateway (SPEC §17): the npm package (``make claude-code``)
run headless against ``make serve`` and the stand-in, with a workspace API token, as a user
would point it at ``<site>/anthropic``."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.served import ROOT, npm_installed

pytestmark = pytest.mark.served

CLAUDE = ROOT / "var" / "claude-code" / "node_modules" / ".bin" / "claude"
MODEL = "claude-sonnet-5"
BYOK_KEY = "sk-ant-api03-served0claude0code0key0000000000000000000000CCDE"
REVOKED_KEY = "sk-ant-api03-served0claude0code0gone0key00000000000000-revoked"


@pytest.fixture(scope="module")
def claude():
    """The Claude Code binary, installed by ``make claude-code`` if it is not yet."""
    return npm_installed(CLAUDE, make_target="claude-code", package="@anthropic-ai/claude-code")


@pytest.fixture(scope="module")
def tokens(served):
    app = served
    for slug in ("cc-credits", "cc-byok", "cc-invalid"):
        app.workspace(slug, admin=f"admin@{slug}.test")
    app.manage("grant_credits", "cc-credits", "10000", "--reason", "served test")
    app.manage("set_llm_key", "cc-byok", "--no-check", stdin=BYOK_KEY + "\n")
    app.manage("set_llm_key", "cc-invalid", "--no-check", stdin=REVOKED_KEY + "\n")
    app.manage("check_llm_keys", "cc-invalid", expect_ok=False)
    return {
        slug: app.api_token(slug, "claude code") for slug in ("cc-credits", "cc-byok", "cc-invalid")
    }


def run_claude(claude: Path, app, token: str, prompt: str, tmp_path: Path, *extra: str):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": f"{app.url}/anthropic",
        "ANTHROPIC_API_KEY": token,
        "ANTHROPIC_MODEL": MODEL,
        "ANTHROPIC_SMALL_FAST_MODEL": "claude-haiku-4-5",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    started = time.monotonic()
    done = subprocess.run(
        [str(claude), "-p", prompt, "--output-format", "json", "--model", MODEL, *extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, time.monotonic() - started


def result_of(done) -> dict:
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_plain_answer_on_a_10000_credit_workspace(claude, served, tokens, standin, tmp_path):
    done, _ = run_claude(claude, served, tokens["cc-credits"], "say hi", tmp_path)

    result = result_of(done)
    assert result["is_error"] is False, result
    assert "Stand-in reply to" in result["result"]
    assert served.database.rows(
        "SELECT count(*) FROM ai_gateway_airequest r JOIN workspaces_workspace w"
        " ON w.id = r.workspace_id WHERE w.slug = 'cc-credits' AND r.outcome = 'ok'"
    ) == [(len([r for r in standin.requests if r.path == "/v1/messages"]),)]


def test_a_tool_round_trip(claude, served, tokens, standin, tmp_path):
    done, _ = run_claude(
        claude,
        served,
        tokens["cc-byok"],
        "Use the Bash tool to run it.",
        tmp_path,
        "--allowedTools",
        "Bash",
    )

    result = result_of(done)
    assert result["is_error"] is False, result
    assert "Stand-in reply to tool result" in result["result"]
    # One call for the tool, one for the answer to its result: no loop.
    first, second = [r.body for r in standin.requests if r.path == "/v1/messages"]
    assert not any(_tool_results(first)) and any(_tool_results(second))


def _tool_results(body: dict):
    for message in body["messages"]:
        if isinstance(message.get("content"), list):
            yield from (b for b in message["content"] if b.get("type") == "tool_result")


def test_an_invalid_workspace_key_fails_at_once_with_the_key_message(
    claude, served, tokens, standin, tmp_path
):
    done, seconds = run_claude(claude, served, tokens["cc-invalid"], "say hi", tmp_path)

    assert seconds < 15
    output = done.stdout + done.stderr
    assert "Workspace Settings" in output and "LLM Key" in output, output
    assert standin.requests == []
