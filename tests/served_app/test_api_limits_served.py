"""Per-token and per-workspace request-rate and concurrency limits (SPEC §17), through
``make serve`` with small limits: 429 ``rate_limit_error`` with ``retry-after``, on every
endpoint (count_tokens and models included); slots come back when an answer ends."""

import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx2
import openai
import pytest
import redis
from google.genai import errors as genai_errors

from tests.served import make_serve_command, start
from tests.served_app.test_provider_apis_served import gem, oai, serve_with_providers

pytestmark = pytest.mark.served

MODEL = "claude-sonnet-5"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def limited(request):
    app = serve_with_providers(
        request,
        AI_API_TOKEN_REQUESTS_PER_MINUTE="4",
        AI_API_WORKSPACE_REQUESTS_PER_MINUTE="6",
        AI_API_TOKEN_MAX_CONCURRENT_REQUESTS="2",
        AI_API_WORKSPACE_MAX_CONCURRENT_REQUESTS="3",
    )
    for slug in ("lim-rate", "lim-conc", "lim-session", "lim-providers"):
        app.workspace(slug, admin=f"admin@{slug}.test")
        app.manage("grant_credits", slug, "5000000", "--reason", "served test")
    return app


def sdk(app, token):
    return anthropic.Anthropic(base_url=f"{app.url}/anthropic", api_key=token, max_retries=0)


def test_the_request_rate_per_token_and_per_workspace(limited, standin):
    if time.time() % 60 > 45:  # keep the test inside one one-minute window
        time.sleep(61 - time.time() % 60)
    first = sdk(limited, limited.api_token("lim-rate", "first"))
    second = sdk(limited, limited.api_token("lim-rate", "second"))

    for _ in range(2):
        first.messages.count_tokens(model=MODEL, messages=HI)
        first.models.list()
    with pytest.raises(anthropic.RateLimitError) as per_token:
        first.models.list()
    second.messages.count_tokens(model=MODEL, messages=HI)
    second.models.list()
    with pytest.raises(anthropic.RateLimitError) as per_workspace:
        second.messages.count_tokens(model=MODEL, messages=HI)

    for raised in (per_token, per_workspace):
        assert raised.value.body["error"]["type"] == "rate_limit_error"
        assert 1 <= int(raised.value.response.headers["retry-after"]) <= 61
    assert "AI_API_TOKEN_REQUESTS_PER_MINUTE" in per_token.value.body["error"]["message"]
    assert "AI_API_WORKSPACE_REQUESTS_PER_MINUTE" in per_workspace.value.body["error"]["message"]
    assert len(standin.requests) == 6


def test_the_openai_and_gemini_apis_count_against_the_same_limits(limited):
    """The limits hold on /openai and /gemini too, each refusal in that provider's shape:
    OpenAI's 429 ``rate_limit_error`` and Google's 429 ``RESOURCE_EXHAUSTED``, with
    ``retry-after``."""
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)
    first = oai(limited, limited.api_token("lim-providers", "first"))
    second = gem(limited, limited.api_token("lim-providers", "second"))

    for _ in range(4):
        first.models.list()
    with pytest.raises(openai.RateLimitError) as per_token:
        first.models.list()
    for _ in range(2):
        list(second.models.list())
    with pytest.raises(genai_errors.ClientError) as per_workspace:
        list(second.models.list())

    assert per_token.value.body["type"] == "rate_limit_error"
    assert "AI_API_TOKEN_REQUESTS_PER_MINUTE" in per_token.value.body["message"]
    assert 1 <= int(per_token.value.response.headers["retry-after"]) <= 61
    assert (per_workspace.value.code, per_workspace.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert "AI_API_WORKSPACE_REQUESTS_PER_MINUTE" in per_workspace.value.message
    assert 1 <= int(per_workspace.value.response.headers["retry-after"]) <= 61


def test_concurrent_requests_per_token(limited, standin):
    standin.state.stream_word_delay = 0.5
    token = limited.api_token("lim-conc", "ci")
    headers = {"x-api-key": token, "content-type": "application/json"}
    body = {"model": MODEL, "max_tokens": 32, "messages": HI, "stream": True}
    client = httpx2.Client(base_url=limited.url, timeout=30)
    streams = [
        client.stream("POST", "/anthropic/v1/messages", json=body, headers=headers)
        for _ in range(2)
    ]
    opened = [stream.__enter__() for stream in streams]
    assert [response.status_code for response in opened] == [200, 200]

    with pytest.raises(anthropic.RateLimitError) as raised:
        sdk(limited, token).messages.count_tokens(model=MODEL, messages=HI)
    for stream in streams:
        stream.__exit__(None, None, None)
    client.close()
    time.sleep(1)

    assert "AI_API_TOKEN_MAX_CONCURRENT_REQUESTS" in raised.value.body["error"]["message"]
    assert raised.value.response.headers["retry-after"] == "1"
    # The two streams' slots came back when they ended (their client left).
    standin.state.stream_word_delay = 0
    sdk(limited, token).messages.count_tokens(model=MODEL, messages=HI)


def test_the_try_ai_session_api_is_limited_per_member(limited, standin):
    """Decision 127: a member's session counts like a token (AI_API_TOKEN_*), and against
    the workspace's limits; the page's API answers 429 in the same envelope."""
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)
    browser = limited.login("admin@lim-session.test")
    headers = {"X-CSRFToken": browser.cookies["csrftoken"]}
    body = {"model": MODEL, "max_tokens": 16, "messages": HI}

    answers = [
        browser.post("/api/v1/w/lim-session/messages", json=body, headers=headers) for _ in range(5)
    ]

    assert [answer.status_code for answer in answers] == [200] * 4 + [429]
    refusal = answers[-1]
    assert refusal.json()["error"]["type"] == "rate_limit_error"
    assert refusal.json()["error"]["message"].startswith(
        "You have sent more than 4 requests this minute (AI_API_TOKEN_REQUESTS_PER_MINUTE)"
    )
    assert 1 <= int(refusal.headers["retry-after"]) <= 61
    assert len(standin.requests) == 4


def test_a_session_stream_holds_its_slot_until_it_ends(limited, standin):
    standin.state.stream_word_delay = 0.5
    browser = limited.login("admin@lim-conc.test")
    headers = {"X-CSRFToken": browser.cookies["csrftoken"]}
    body = {"model": MODEL, "max_tokens": 32, "messages": HI, "stream": True}
    streams = [
        browser.stream("POST", "/api/v1/w/lim-conc/messages", json=body, headers=headers)
        for _ in range(2)
    ]
    opened = [stream.__enter__() for stream in streams]
    assert [response.status_code for response in opened] == [200, 200]

    refusal = browser.post("/api/v1/w/lim-conc/messages", json=body, headers=headers)
    for stream in streams:
        stream.__exit__(None, None, None)
    time.sleep(1)
    standin.state.stream_word_delay = 0

    assert refusal.status_code == 429
    assert "AI_API_TOKEN_MAX_CONCURRENT_REQUESTS" in refusal.json()["error"]["message"]
    after = browser.post(
        "/api/v1/w/lim-conc/messages", json={**body, "stream": False}, headers=headers
    )
    assert after.status_code == 200


SHARED_CACHE_REDIS = os.environ.get("LIMITS_TEST_REDIS_URL", "redis://127.0.0.1:6379/6")


@pytest.fixture(scope="module")
def two_workers(served_database, standin_server, tmp_path_factory):
    """``make serve`` with two worker processes and no CACHE_URL: the cache is the broker's
    Redis (decision 126), under a key prefix of this run's own."""
    try:
        redis.Redis.from_url(SHARED_CACHE_REDIS, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"needs Redis at {SHARED_CACHE_REDIS} (set LIMITS_TEST_REDIS_URL)")
    app = start(
        make_serve_command,
        database=served_database,
        standin_url=standin_server.url,
        log_path=tmp_path_factory.mktemp("two-workers-log") / "server.log",
        extra_env={
            "WEB_CONCURRENCY": "2",
            "CELERY_BROKER_URL": SHARED_CACHE_REDIS,
            "CACHE_URL": f"{SHARED_CACHE_REDIS}?key_prefix=limits-{secrets.token_hex(4)}",
            "AI_API_TOKEN_REQUESTS_PER_MINUTE": "5",
        },
    )
    app.workspace("lim-two", admin="admin@lim-two.test")
    app.manage("grant_credits", "lim-two", "5000000", "--reason", "served test")
    yield app
    app.stop()


def test_a_limit_holds_across_worker_processes(two_workers, standin):
    """Twenty requests at once, each on its own connection, reach both workers; a limit of
    five a minute admits five in all (per-process counters admitted up to five each)."""
    if time.time() % 60 > 45:  # keep the test inside one one-minute window
        time.sleep(61 - time.time() % 60)
    token = two_workers.api_token("lim-two", "burst")
    start_together = threading.Barrier(20)

    def one_request(_):
        with httpx2.Client(base_url=two_workers.url, timeout=30) as client:
            start_together.wait()
            return client.get("/anthropic/v1/models", headers={"x-api-key": token}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(one_request, range(20)))

    assert sorted(statuses) == [200] * 5 + [429] * 15
    assert len(standin.requests) == 5
