"""The provider interface proven by three providers: every adapter checks keys and relays
its own API by operation through the same two calls, metered in the same ``Usage``."""

import pytest
from asgiref.sync import async_to_sync

from llm_keys.models import Provider
from providers import CheckOutcome, RelayRequest, Usage, get_adapter
from providers.keys import shape_for
from tests.factories import fake_gemini_key, fake_key, fake_openai_key

ASK = {
    "anthropic": (
        fake_key,
        RelayRequest(
            "messages",
            body={
                "model": "claude-haiku-4-5",
                "max_tokens": 100,
                "messages": [{"role": "user", "content": "Hello there"}],
            },
            headers={"anthropic-version": "2023-06-01"},
        ),
    ),
    "openai": (
        fake_openai_key,
        RelayRequest(
            "chat.completions",
            body={"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Hello there"}]},
        ),
    ),
    "gemini": (
        fake_gemini_key,
        RelayRequest(
            "streamGenerateContent",
            body={"contents": [{"parts": [{"text": "Hello there"}]}]},
            model="gemini-2.5-flash",
        ),
    ),
}


def test_every_provider_choice_has_an_adapter_and_a_key_shape():
    for provider in Provider.values:
        adapter = get_adapter(provider)
        assert adapter.name == provider
        assert adapter.stream_operations <= adapter.operations
        assert shape_for(provider).provider == provider
    with pytest.raises(ValueError, match="No adapter for provider 'mistral'"):
        get_adapter("mistral")


@pytest.mark.parametrize("provider", list(ASK))
def test_the_same_calls_check_a_key_and_stream_an_answer_for_every_provider(provider):
    make_key, streamed = ASK[provider]
    adapter = get_adapter(provider)
    key = make_key()
    assert adapter.validate(key).outcome == CheckOutcome.VALID
    assert adapter.validate(make_key("revoked")).outcome == CheckOutcome.INVALID

    async def consume():
        opened = await adapter.astream(api_key=key, request=streamed)
        body = b"".join([chunk async for chunk in opened])
        return opened.summary, body

    summary, body = async_to_sync(consume)()
    assert body
    assert summary.finished
    assert isinstance(summary.usage, Usage)
    assert summary.usage.input_tokens > 0 and summary.usage.output_tokens > 0
    with pytest.raises(ValueError, match="no operation"):
        async_to_sync(adapter.asend)(api_key=key, request=RelayRequest("no.such.operation"))
