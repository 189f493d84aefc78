"""What the OpenAI and Gemini adapters do alike, as one table: the §6 classification of a key
probe, an unreachable provider, refusals before any byte, and a stream that stalls. Each
provider's own behaviour stays in ``test_openai_adapter`` and ``test_gemini_adapter``."""

import socket
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from providers import (
    CheckOutcome,
    KeyRejectedError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    RelayRequest,
    get_adapter,
)
from tests.factories import fake_gemini_key, fake_openai_key


@dataclass(frozen=True)
class Case:
    """One provider as these tests drive it."""

    provider: str
    fake_key: Any
    standin: str  # the stand-in fixture's name
    probe: tuple[str, str]  # the key check's method and path
    base_url_setting: str
    name: str  # as the adapter's messages name the provider
    answer: RelayRequest
    streamed: RelayRequest

    def sent_key(self, recorded) -> str:
        if self.provider == "gemini":
            return recorded.headers["x-goog-api-key"]
        return recorded.api_key


HELLO_CHAT = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Hello there"}]}
HELLO_GEMINI = {"contents": [{"role": "user", "parts": [{"text": "A long story " * 20}]}]}
OPENAI = Case(
    provider="openai",
    fake_key=fake_openai_key,
    standin="openai_standin",
    probe=("GET", "/v1/models"),
    base_url_setting="OPENAI_BASE_URL",
    name="OpenAI",
    answer=RelayRequest("chat.completions", body=HELLO_CHAT),
    streamed=RelayRequest("chat.completions", body={**HELLO_CHAT, "stream": True}),
)
GEMINI = Case(
    provider="gemini",
    fake_key=fake_gemini_key,
    standin="gemini_standin",
    probe=("GET", "/v1beta/models?pageSize=1"),
    base_url_setting="GEMINI_BASE_URL",
    name="Google",
    answer=RelayRequest("generateContent", body=HELLO_GEMINI, model="gemini-2.5-flash"),
    streamed=RelayRequest("streamGenerateContent", body=HELLO_GEMINI, model="gemini-2.5-flash"),
)
CASES = {"openai": OPENAI, "gemini": GEMINI}


def send(case: Case, key: str, request: RelayRequest):
    return async_to_sync(get_adapter(case.provider).asend)(api_key=key, request=request)


def stream(case: Case, key: str, request: RelayRequest):
    async def consume():
        opened = await get_adapter(case.provider).astream(api_key=key, request=request)
        chunks = [chunk async for chunk in opened]
        return opened, b"".join(chunks)

    return async_to_sync(consume)()


# provider, key marker, the check's outcome and status (None: no answer in time)
CLASSIFICATION = [
    ("openai", "", CheckOutcome.VALID, 200),
    ("openai", "ratelimited", CheckOutcome.VALID, 429),
    ("openai", "revoked", CheckOutcome.INVALID, 401),
    ("openai", "forbidden", CheckOutcome.INVALID, 403),
    ("openai", "requesttimeout", CheckOutcome.UNKNOWN, 408),
    ("openai", "servererror", CheckOutcome.UNKNOWN, 500),
    ("openai", "overloaded", CheckOutcome.UNKNOWN, 503),
    ("openai", "timeout", CheckOutcome.UNKNOWN, None),
    ("gemini", "", CheckOutcome.VALID, 200),
    ("gemini", "ratelimited", CheckOutcome.VALID, 429),
    ("gemini", "revoked", CheckOutcome.INVALID, 400),  # Google's 400 API_KEY_INVALID
    ("gemini", "forbidden", CheckOutcome.INVALID, 403),
    ("gemini", "servererror", CheckOutcome.UNKNOWN, 500),
    ("gemini", "overloaded", CheckOutcome.UNKNOWN, 503),
    ("gemini", "requesttimeout", CheckOutcome.UNKNOWN, 504),
    ("gemini", "timeout", CheckOutcome.UNKNOWN, None),
]


@pytest.mark.parametrize("provider,marker,outcome,status", CLASSIFICATION)
def test_classification(request, settings, provider, marker, outcome, status):
    case = CASES[provider]
    standin = request.getfixturevalue(case.standin)
    settings.LLM_KEY_CHECK_TIMEOUT_SECONDS = 0.5
    key = case.fake_key(marker)
    result = get_adapter(provider).validate(key)
    assert (result.outcome, result.status_code) == (outcome, status)
    # One probe (no SDK retries): the list of models, the key in a header and never the URL.
    [probe] = standin.requests
    assert (probe.method, probe.path) == case.probe
    assert case.sent_key(probe) == key
    assert key not in probe.path


@pytest.mark.parametrize("provider", CASES)
def test_an_unreachable_provider_is_unknown(settings, provider):
    case = CASES[provider]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    suffix = "/v1" if provider == "openai" else ""
    setattr(settings, case.base_url_setting, f"http://127.0.0.1:{port}{suffix}")
    result = get_adapter(provider).validate(case.fake_key())
    assert result.outcome == CheckOutcome.UNKNOWN
    assert f"Could not connect to {case.name}" in result.reason


@pytest.mark.parametrize(
    "provider,marker,error,status",
    [
        ("openai", "revoked", KeyRejectedError, 401),
        ("openai", "forbidden", KeyRejectedError, 403),
        ("openai", "ratelimited", ProviderRateLimitedError, 429),
        ("openai", "overloaded", ProviderUnavailableError, 503),
        ("gemini", "revoked", KeyRejectedError, 400),
        ("gemini", "forbidden", KeyRejectedError, 403),
        ("gemini", "ratelimited", ProviderRateLimitedError, 429),
        ("gemini", "overloaded", ProviderUnavailableError, 503),
    ],
)
def test_refusals_raise_before_any_byte_is_relayed(provider, marker, error, status):
    case = CASES[provider]
    key = case.fake_key(marker)
    with pytest.raises(error) as caught:
        stream(case, key, case.streamed)
    assert caught.value.status_code == status
    with pytest.raises(error):
        send(case, key, case.answer)


@pytest.mark.parametrize("provider", CASES)
def test_a_stream_that_stalls_midway_raises_a_timeout(request, settings, provider):
    """The provider goes silent past the read timeout: the stream raises (so the gateway
    tells its client), after the part already relayed was counted."""
    case = CASES[provider]
    request.getfixturevalue(case.standin).state.answer_words = 40
    settings.AI_REQUEST_TIMEOUT_SECONDS = 0.5
    seen = []

    async def consume():
        opened = await get_adapter(provider).astream(
            api_key=case.fake_key("streamstall"), request=case.streamed
        )
        seen.append(opened)
        async for _ in opened:
            pass

    with pytest.raises(ProviderUnavailableError) as caught:
        async_to_sync(consume)()
    assert caught.value.provider_error_type == "timeout"
    [opened] = seen
    assert not opened.summary.finished
    assert opened.summary.usage.output_tokens > 0
