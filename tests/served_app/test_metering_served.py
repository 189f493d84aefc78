"""Credits metering through ``make serve``, the official SDK and the stand-in (issue 19):
reservations that follow the request, a lease the sweep respects, credits running out
mid-stream, hidden work charged, the per-workspace concurrency limit."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx2
import pytest

from credits import pricing
from providers import Usage
from tests.served import ROOT, make_serve_command, sse_events, start

pytestmark = pytest.mark.served

LEASE_SECONDS = 2
CONCURRENT = 5
# The sweep as it exists before and after issue 19, every half second in one process: release
# what was not renewed (before: what is older than) LEASE_SECONDS.
SWEEP_LOOP = (
    "import datetime, pathlib, time\n"
    "from credits.services import credits_release_stale_holds\n"
    "while True:\n"
    f"    n = credits_release_stale_holds(older_than=datetime.timedelta(seconds={LEASE_SECONDS}))\n"
    "    print(n, time.monotonic(), flush=True)\n"
    "    if pathlib.Path('{stop}').exists():\n"
    "        break\n"
    "    time.sleep(0.5)\n"
)


@pytest.fixture(scope="module")
def metered(served_database, standin_server, tmp_path_factory):
    """``make serve`` with a short lease, so that a stream outlives it."""
    app = start(
        make_serve_command,
        database=served_database,
        standin_url=standin_server.url,
        log_path=tmp_path_factory.mktemp("metered-log") / "server.log",
        extra_env={
            "AI_HOLD_MAX_AGE_SECONDS": str(LEASE_SECONDS),
            "AI_CREDITS_MAX_CONCURRENT_REQUESTS": str(CONCURRENT),
        },
    )
    yield app
    app.stop()


def _workspace(app, slug: str, credits: int) -> str:
    app.workspace(slug, admin=f"admin@{slug}.test")
    app.manage("grant_credits", slug, str(credits), "--reason", "served metering test")
    return app.api_token(slug, "metering")


def _of(slug: str) -> str:
    return f"workspace_id = (SELECT id FROM workspaces_workspace WHERE slug = '{slug}')"


def _rows(app, slug: str) -> list[tuple]:
    return app.database.rows(
        "SELECT outcome, credits_charged, input_tokens, output_tokens FROM ai_gateway_airequest"
        f" WHERE {_of(slug)} ORDER BY id"
    )


def _ledger(app, slug: str) -> list[tuple]:
    return app.database.rows(
        f"SELECT kind, amount, charged, written_off FROM credits_creditentry WHERE {_of(slug)}"
        " ORDER BY id"
    )


def _balance(app, slug: str) -> int:
    [(balance,)] = app.database.rows(f"SELECT balance FROM credits_creditaccount WHERE {_of(slug)}")
    return balance


def _sdk(app, token: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=f"{app.url}/anthropic", api_key=token, max_retries=0, timeout=120
    )


def _cost(model: str, usage) -> int:
    from django.conf import settings

    price = pricing.get_price(model)
    assert price is not None and model in settings.AI_MODEL_PRICES
    return pricing.cost(
        price,
        Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens or 0,
            cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        ),
    )


def _wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def test_a_stream_longer_than_the_lease_is_charged_in_full_while_the_sweep_runs(
    metered, standin, tmp_path
):
    app = metered
    token = _workspace(app, "longrun", 100_000)
    standin.state.answer_words = 50
    standin.state.stream_word_delay = 0.2  # about 10 s: five leases
    stop_file = tmp_path / "stop-sweeping"
    # One process sweeping every half second (a manage.py per sweep takes seconds to start).
    sweeper = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-v0", "-c", SWEEP_LOOP.format(stop=stop_file)],
        cwd=ROOT,
        env=app.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    sweeps = [sweeper.stdout.readline().split()]  # its first sweep: it is running
    try:
        began = time.monotonic()
        with _sdk(app, token).messages.stream(
            model="claude-sonnet-5",
            max_tokens=1000,
            messages=[{"role": "user", "content": "Tell me a long story"}],
        ) as stream:
            final = stream.get_final_message()
        ended = time.monotonic()
    finally:
        stop_file.touch()
        out, _ = sweeper.communicate(timeout=60)
    sweeps += [line.split() for line in out.splitlines()]
    during = [s for s in sweeps if began + LEASE_SECONDS < float(s[1]) < ended]
    assert during, sweeps  # the sweep ran while the stream was older than its lease
    assert {s[0] for s in sweeps} == {"0"}  # and released nothing
    expected = _cost("claude-sonnet-5", final.usage)
    [(outcome, charged, _input, output)] = _rows(app, "longrun")
    assert (outcome, charged, output) == ("ok", expected, final.usage.output_tokens)
    assert expected > 0
    kinds = [kind for kind, *_ in _ledger(app, "longrun")]
    assert "release" not in kinds, kinds  # the lease was renewed: never swept
    assert _balance(app, "longrun") == 100_000 - expected


def test_the_sweep_leaves_a_live_request_and_charges_a_killed_servers(
    served_database, standin, tmp_path
):
    app = start(
        make_serve_command,
        database=served_database,
        standin_url=standin.url,
        log_path=tmp_path / "killed.log",
        extra_env={"AI_HOLD_MAX_AGE_SECONDS": str(LEASE_SECONDS)},
    )
    try:
        token = _workspace(app, "killed-lease", 500_000)
        standin.state.latency = 30.0  # the provider takes its time: the request stays open

        def ask():
            with contextlib.suppress(anthropic.APIError):  # the server dies under it
                _sdk(app, token).messages.create(
                    model="claude-sonnet-5",
                    max_tokens=100,
                    messages=[{"role": "user", "content": "Take your time"}],
                )

        asking = threading.Thread(target=ask)
        asking.start()
        _wait_for(
            lambda: app.database.rows(
                f"SELECT id FROM credits_creditentry WHERE kind = 'hold' AND {_of('killed-lease')}"
            )
        )
        time.sleep(LEASE_SECONDS + 1)  # older than a lease, but renewed: alive
        assert app.manage("release_stale_holds").strip().endswith("Charged 0 stale reservation(s).")

        os.killpg(app.process.pid, signal.SIGKILL)
        app.process.wait()
        asking.join()
        time.sleep(LEASE_SECONDS + 0.5)  # nobody renews it any more
        out = app.manage("release_stale_holds")
        assert "of 'killed-lease'" in out and out.strip().endswith(
            "Charged 1 stale reservation(s)."
        )
        # Charged its whole reservation (the bound on what the provider billed: its usage was
        # never seen), through the settle path, and recorded in the request's one usage row.
        ledger = _ledger(app, "killed-lease")
        [(_, hold, _, _)] = [entry for entry in ledger if entry[0] == "hold"]
        assert ledger[1:] == [("hold", hold, 0, 0), ("settle", 0, -hold, 0)]
        assert _balance(app, "killed-lease") == 500_000 + hold
        [(state,)] = app.database.rows(
            "SELECT state FROM credits_creditreservation r JOIN credits_creditentry e"
            f" ON e.id = r.hold_id WHERE e.{_of('killed-lease')}"
        )
        assert state == "expired"
        assert _rows(app, "killed-lease") == [("process_died", -hold, 0, 0)]
        assert app.manage("release_stale_holds").strip() == "Charged 0 stale reservation(s)."
        assert len(_rows(app, "killed-lease")) == 1
    finally:
        standin.state.latency = 0.0
        app.stop()


def _claude_code_body() -> dict:
    """A request shaped like Claude Code's: streamed, max_tokens 64,000, the dearest model,
    about 70 kB of system prompt and tool definitions."""
    from django.conf import settings

    prices = settings.AI_MODEL_PRICES
    dearest = max(
        (m for m in prices if prices[m]["max_output_tokens"] >= 64_000),
        key=lambda m: (prices[m]["output"], prices[m]["input"]),
    )
    tools = [
        {
            "name": f"tool_{i}",
            "description": "Runs one of the agent's actions. " + "Detailed usage notes. " * 130,
            "input_schema": {
                "type": "object",
                "properties": {"argument": {"type": "string", "description": "What to act on."}},
                "required": ["argument"],
            },
        }
        for i in range(20)
    ]
    body = {
        "model": dearest,
        "max_tokens": 64_000,
        "system": [{"type": "text", "text": "You are an agent working in a repository. " * 200}],
        "tools": tools,
        "tool_choice": {"type": "none"},
        "messages": [{"role": "user", "content": "say hi"}],
    }
    size = len(json.dumps(body))
    assert 60_000 < size < 80_000, size
    return body


def _stream_through(app, token: str, body: dict):
    with _sdk(app, token).messages.stream(**body) as stream:
        return stream.get_final_message()


def test_a_claude_code_shaped_request_runs_on_10000_credits_and_five_at_once_on_100000(
    metered, standin
):
    app = metered
    body = _claude_code_body()
    small = _workspace(app, "cc-small", 10_000)
    final = _stream_through(app, small, body)
    assert final.content[0].type == "text"
    [(outcome, charged, *_)] = _rows(app, "cc-small")
    assert outcome == "ok" and 0 < charged == _cost(body["model"], final.usage)
    assert _balance(app, "cc-small") == 10_000 - charged

    large = _workspace(app, "cc-large", 100_000)
    standin.state.stream_word_delay = 0.2  # the five overlap
    with ThreadPoolExecutor(CONCURRENT) as pool:
        finals = list(pool.map(lambda _: _stream_through(app, large, body), range(CONCURRENT)))
    assert len(finals) == CONCURRENT
    rows = _rows(app, "cc-large")
    assert [r[0] for r in rows] == ["ok"] * CONCURRENT
    assert _balance(app, "cc-large") == 100_000 - sum(r[1] for r in rows)


def test_credits_running_out_mid_stream_end_it_with_an_error_event(metered, standin):
    app = metered
    token = _workspace(app, "runs-out", 400)
    standin.state.answer_words = 3_000  # far more than 400 credits buy
    events = []
    with (
        httpx2.Client(timeout=60) as client,
        client.stream(
            "POST",
            f"{app.url}/anthropic/v1/messages",
            headers={"x-api-key": token, "anthropic-version": "2023-06-01"},
            json={
                "model": "claude-sonnet-5",
                "max_tokens": 8_000,
                "stream": True,
                "messages": [{"role": "user", "content": "Write a very long essay"}],
            },
        ) as response,
    ):
        assert response.status_code == 200
        events = list(sse_events(response))

    names = [name for name, _ in events]
    assert names[0] == "message_start" and "content_block_delta" in names
    assert names[-1] == "error" and "message_stop" not in names
    error = json.loads(events[-1][1])
    assert error["type"] == "error"
    assert error["error"]["type"] == "insufficient_credits"
    assert "ran out" in error["error"]["message"] and "add credits" in error["error"]["message"]
    [(outcome, charged, _input, output)] = _rows(app, "runs-out")
    assert outcome == "credits_exhausted" and output > 0
    assert charged == 400  # every credit the workspace had, no more
    settle = [row for row in _ledger(app, "runs-out") if row[0] == "settle"]
    [(_kind, _amount, settled_charged, written_off)] = settle
    assert settled_charged == 400 and written_off >= 0  # what was in flight: a shortfall
    assert _balance(app, "runs-out") == 0
    # The SDK raises its own error for the same stream.
    token2 = _workspace(app, "runs-out-sdk", 400)
    stream = _sdk(app, token2).messages.stream(
        model="claude-sonnet-5",
        max_tokens=8_000,
        messages=[{"role": "user", "content": "Write a very long essay"}],
    )
    with pytest.raises(anthropic.APIStatusError, match="ran out"), stream as events_of_sdk:
        events_of_sdk.get_final_message()


def test_an_abandoned_hidden_thinking_stream_is_charged_what_the_provider_billed(metered, standin):
    app = metered
    token = _workspace(app, "hidden", 100_000)
    standin.state.hidden_thinking_tokens = 20_000
    standin.state.stream_word_delay = 0.1  # the answer is still streaming when the client leaves
    with (
        httpx2.Client(timeout=60) as client,
        client.stream(
            "POST",
            f"{app.url}/anthropic/v1/messages",
            headers={"x-api-key": token, "anthropic-version": "2023-06-01"},
            json={
                "model": "claude-sonnet-5",
                "max_tokens": 32_000,
                "stream": True,
                "thinking": {"type": "enabled", "budget_tokens": 20_000, "display": "omitted"},
                "messages": [{"role": "user", "content": "Think hard, then answer"}],
            },
        ) as response,
    ):
        for name, data in sse_events(response):
            if name == "content_block_delta" and "text_delta" in data:
                break  # the client hangs up at the first word of the answer
    [(outcome, charged, input_tokens, output)] = _wait_for(lambda: _rows(app, "hidden"))
    billed = standin.state.hidden_thinking_billed[-1]
    at_least = _cost("claude-sonnet-5", Usage(input_tokens=input_tokens, output_tokens=billed))
    assert outcome == "client_disconnected"
    assert output >= billed and charged >= at_least > 2_000


def test_the_concurrency_limit_holds(metered, standin):
    app = metered
    token = _workspace(app, "parallel", 1_000_000)
    standin.state.latency = 2.0
    tries = CONCURRENT + 3

    def ask(_):
        try:
            _sdk(app, token).messages.create(
                model="claude-sonnet-5",
                max_tokens=100,
                messages=[{"role": "user", "content": "Hello"}],
            )
            return 200, None
        except anthropic.RateLimitError as exc:
            return 429, exc.response.headers.get("retry-after")

    with ThreadPoolExecutor(tries) as pool:
        results = list(pool.map(ask, range(tries)))
    assert sorted(status for status, _ in results) == [200] * CONCURRENT + [429] * 3
    assert all(after for status, after in results if status == 429)
    outcomes = sorted(row[0] for row in _rows(app, "parallel"))
    assert outcomes == ["ok"] * CONCURRENT + ["rate_limited"] * 3
    [(open_now,)] = app.database.rows(
        f"SELECT open_reservations FROM credits_creditaccount WHERE {_of('parallel')}"
    )
    assert open_now == 0
