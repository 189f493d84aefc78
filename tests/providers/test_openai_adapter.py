"""The OpenAI adapter through the real ``openai`` SDK against the stand-in (what it does like
the Gemini adapter is in ``test_relay_adapters``): key reasons, answers relayed as OpenAI's
bytes, and usage read for metering."""

import json

import pytest
from asgiref.sync import async_to_sync

from providers import (
    ProviderRequestError,
    ProviderUnavailableError,
    RelayRequest,
    get_adapter,
)
from providers.openai import shared_client
from tests.factories import fake_openai_key

HELLO = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Hello there"}]}


@pytest.fixture
def adapter():
    return get_adapter("openai")


def send(adapter, key, request):
    return async_to_sync(adapter.asend)(api_key=key, request=request)


def stream(adapter, key, request):
    async def consume():
        opened = await adapter.astream(api_key=key, request=request)
        chunks = [chunk async for chunk in opened]
        return opened, b"".join(chunks)

    return async_to_sync(consume)()


def events(raw: bytes) -> list[str]:
    return [e.partition("data: ")[2] for e in raw.decode().split("\n\n") if e.strip()]


def test_reasons_name_openai_and_say_what_happened(adapter):
    assert adapter.validate(fake_openai_key("revoked")).reason == (
        "Rejected by OpenAI: the key was revoked, has expired or is mistyped."
    )
    assert "lacks permission" in adapter.validate(fake_openai_key("forbidden")).reason
    assert "HTTP 503" in adapter.validate(fake_openai_key("overloaded")).reason


def test_the_shared_client_carries_no_key_of_its_own(openai_standin):
    with pytest.raises(ValueError, match="No API key"):
        shared_client().models.list()
    assert openai_standin.requests == []


def test_one_pool_serves_many_keys(openai_standin, adapter):
    keys = [fake_openai_key() for _ in range(10)]
    for key in keys:
        adapter.validate(key)
    assert openai_standin.state.connections <= 1
    assert openai_standin.keys_seen() == keys


def test_a_chat_completion_is_relayed_as_openais_bytes_with_its_usage(openai_standin, adapter):
    key = fake_openai_key()
    body = {**HELLO, "reasoning_effort": "low", "some_future_field": {"kept": True}}
    result = send(adapter, key, RelayRequest("chat.completions", body=body))
    assert json.loads(result.content) == result.body
    assert result.body["object"] == "chat.completion"
    usage = result.body["usage"]
    assert result.usage.input_tokens == usage["prompt_tokens"]
    assert result.usage.output_tokens == usage["completion_tokens"]
    assert result.usage.reasoning_output_tokens == 64
    assert result.request_id.startswith("req_")
    assert result.headers["x-ratelimit-remaining-requests"] == "499"
    # The client's JSON went upstream unchanged, fields unknown to the SDK included.
    sent = openai_standin.requests[-1]
    assert sent.body == body
    assert sent.api_key == key


def test_cached_input_is_counted_apart(adapter):
    key = fake_openai_key()
    long = {**HELLO, "messages": [{"role": "user", "content": "Shared context. " * 400}]}
    send(adapter, key, RelayRequest("chat.completions", body=long))
    again = send(adapter, key, RelayRequest("chat.completions", body=long))
    cached = again.body["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0
    assert again.usage.cache_read_input_tokens == cached
    assert again.usage.input_tokens == again.body["usage"]["prompt_tokens"] - cached


def test_embeddings_answer_as_the_client_asked(openai_standin, adapter):
    body = {"model": "text-embedding-3-small", "input": "one", "dimensions": 4}
    result = send(adapter, fake_openai_key(), RelayRequest("embeddings", body=body))
    # No encoding_format asked: floats, as OpenAI's API answers by default (the typed SDK
    # method would have asked for base64).
    assert isinstance(result.body["data"][0]["embedding"][0], float)
    assert openai_standin.requests[-1].body == body
    assert result.usage.input_tokens == result.body["usage"]["prompt_tokens"]


def test_models_are_listed(adapter):
    result = send(adapter, fake_openai_key(), RelayRequest("models.list"))
    assert "gpt-5-mini" in [m["id"] for m in result.body["data"]]


def test_a_stream_is_always_metered_and_the_client_sees_what_it_asked_for(openai_standin, adapter):
    plain = send(adapter, fake_openai_key(), RelayRequest("chat.completions", body=HELLO))

    opened, raw = stream(adapter, fake_openai_key(), RelayRequest("chat.completions", body=HELLO))
    # Asked upstream for the usage ...
    assert openai_standin.requests[-1].body["stream_options"] == {"include_usage": True}
    assert opened.summary.usage == plain.usage
    assert opened.summary.finished
    # ... but the client, who did not ask, gets the stream it would have had from OpenAI.
    data = events(raw)
    assert data[-1] == "[DONE]"
    assert all('"usage"' not in d for d in data)
    text = "".join((json.loads(d)["choices"][0]["delta"].get("content") or "") for d in data[:-1])
    assert text == plain.body["choices"][0]["message"]["content"]

    asked = {**HELLO, "stream_options": {"include_usage": True}}
    opened, raw = stream(adapter, fake_openai_key(), RelayRequest("chat.completions", body=asked))
    data = events(raw)
    assert json.loads(data[-2])["choices"] == []
    assert json.loads(data[-2])["usage"]["completion_tokens"] == plain.usage.output_tokens


def test_a_response_stream_is_relayed_and_metered(adapter):
    body = {"model": "gpt-5-mini", "input": "Tell me about it"}
    opened, raw = stream(adapter, fake_openai_key(), RelayRequest("responses", body=body))
    assert raw.startswith(b"event: response.created\ndata: ")
    assert opened.summary.finished
    assert opened.summary.model == "gpt-5-mini"
    completed = json.loads(events(raw)[-1])["response"]["usage"]
    assert opened.summary.usage.output_tokens == completed["output_tokens"]


def test_a_stream_that_breaks_keeps_an_estimate_and_the_error(adapter):
    opened, _ = stream(
        adapter, fake_openai_key("streamerror"), RelayRequest("chat.completions", body=HELLO)
    )
    assert not opened.summary.finished
    assert opened.summary.usage.output_tokens > 0
    assert isinstance(opened.summary.error, ProviderUnavailableError)


def test_a_bad_request_says_what_openai_said(adapter):
    unknown = {**HELLO, "model": "gpt-0"}
    with pytest.raises(ProviderRequestError) as caught:
        send(adapter, fake_openai_key(), RelayRequest("chat.completions", body=unknown))
    assert caught.value.status_code == 404
    assert "does not exist" in caught.value.message
