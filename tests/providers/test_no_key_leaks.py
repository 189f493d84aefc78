"""The OpenAI and Gemini sentinel keys never escape an adapter: not into a log record (any
level, the SDKs' and HTTP libraries' loggers included), an error's message, or what is relayed
back, on success, refusal, outage or a broken stream."""

import pytest
from asgiref.sync import async_to_sync

from providers import ProviderError, RelayRequest, get_adapter
from tests.conftest import GEMINI_SENTINEL_KEY, OPENAI_SENTINEL_KEY
from tests.leaks import assert_secret_absent, capture_all_logs

CASES = {
    "openai": (
        OPENAI_SENTINEL_KEY,
        RelayRequest(
            "chat.completions",
            body={"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Hi"}]},
        ),
        ("openai", "httpx"),
    ),
    "gemini": (
        GEMINI_SENTINEL_KEY,
        RelayRequest(
            "streamGenerateContent",
            body={"contents": [{"parts": [{"text": "A long story " * 10}]}]},
            model="gemini-2.5-flash",
        ),
        ("google_genai", "httpx", "aiohttp"),
    ),
}


@pytest.mark.parametrize("provider", CASES)
def test_the_sentinel_key_never_escapes_an_adapter(request, settings, provider):
    key, streamed, loggers = CASES[provider]
    server = request.getfixturevalue(f"{provider}_standin")
    settings.LLM_KEY_CHECK_TIMEOUT_SECONDS = 0.3
    server.state.timeout_sleep = 0.6
    adapter = get_adapter(provider)
    plain = RelayRequest(
        "chat.completions" if provider == "openai" else "generateContent",
        body=streamed.body,
        model=streamed.model,
    )
    texts = []

    async def stream_once():
        opened = await adapter.astream(api_key=key, request=streamed)
        chunks = [chunk async for chunk in opened]
        return opened, b"".join(chunks)

    with capture_all_logs() as records:
        for behavior in ("ok", "revoked", "forbidden", "ratelimited", "overloaded", "timeout"):
            server.set_behavior(key, behavior)
            result = adapter.validate(key)
            texts.append(repr(result))
            for call in (
                lambda: async_to_sync(adapter.asend)(api_key=key, request=plain),
                lambda: async_to_sync(stream_once)(),
            ):
                if behavior == "timeout":
                    continue  # the request timeout is the gateway's; the check's is shown
                try:
                    outcome = call()
                except ProviderError as error:
                    texts += [error.message, repr(error), str(error.__dict__)]
                else:
                    texts.append(repr(outcome))
        for behavior in ("streamerror", "connreset"):
            server.set_behavior(key, behavior)
            try:
                opened, raw = async_to_sync(stream_once)()
            except ProviderError as error:
                texts += [error.message, repr(error)]
            else:
                texts += [raw.decode(), repr(opened.summary), repr(opened.headers)]

    assert key in server.keys_seen()
    assert any(r.name.startswith(loggers) for r in records), "SDK logs were captured"
    assert_secret_absent(key, records=records, texts=texts, check_db=False)
    assert_secret_absent(key[8:], records=records, texts=texts, check_db=False)
