"""The Gemini adapter through the real ``google-genai`` SDK against the stand-in: the §6 key
classification (with Google's 400 ``API_KEY_INVALID``), answers relayed as Google's bytes,
and usage read for metering."""

import json

import pytest
from asgiref.sync import async_to_sync

from providers import (
    CheckOutcome,
    ProviderRequestError,
    ProviderUnavailableError,
    RelayRequest,
    get_adapter,
)
from tests.factories import fake_gemini_key

MODEL = "gemini-2.5-flash"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hello there, stand-in"}]}]}


@pytest.fixture
def adapter():
    return get_adapter("gemini")


def send(adapter, key, request):
    return async_to_sync(adapter.asend)(api_key=key, request=request)


def stream(adapter, key, request):
    async def consume():
        opened = await adapter.astream(api_key=key, request=request)
        chunks = [chunk async for chunk in opened]
        return opened, b"".join(chunks)

    return async_to_sync(consume)()


def generate(body=HELLO, operation="generateContent", version=None):
    return RelayRequest(operation, body=body, model=MODEL, api_version=version)


def test_a_key_google_calls_invalid_is_invalid_not_a_bad_request(adapter):
    result = adapter.validate("AIza" + "x" * 30)  # the wrong length: Google's 400
    assert result.outcome == CheckOutcome.INVALID
    assert result.error_type == "INVALID_ARGUMENT"
    assert result.reason == (
        "Rejected by Google: the Gemini key is not valid, has expired or was deleted."
    )
    assert "may not use the Gemini API" in adapter.validate(fake_gemini_key("forbidden")).reason


def test_no_key_no_request(gemini_standin, adapter):
    with pytest.raises(ValueError, match="No API key"):
        adapter.validate("")
    with pytest.raises(ValueError, match="No API key"):
        send(adapter, "", generate())
    assert gemini_standin.requests == []


def test_one_client_serves_many_keys_each_with_its_own(gemini_standin, adapter):
    keys = [fake_gemini_key() for _ in range(5)]
    for key in keys:
        send(adapter, key, generate())
    assert [r.headers["x-goog-api-key"] for r in gemini_standin.requests] == keys


def test_generate_content_is_relayed_as_googles_bytes_with_its_usage(gemini_standin, adapter):
    body = {**HELLO, "generationConfig": {"maxOutputTokens": 500}, "futureField": 1}
    result = send(adapter, fake_gemini_key(), generate(body))
    assert json.loads(result.content) == result.body
    metadata = result.body["usageMetadata"]
    assert result.usage.input_tokens == metadata["promptTokenCount"]
    assert result.usage.reasoning_output_tokens == metadata["thoughtsTokenCount"]
    assert result.usage.output_tokens == (
        metadata["candidatesTokenCount"] + metadata["thoughtsTokenCount"]
    )
    sent = gemini_standin.requests[-1]
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.body == body


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_the_version_the_client_called_is_kept(gemini_standin, adapter, version):
    send(adapter, fake_gemini_key(), generate(version=version))
    assert gemini_standin.requests[-1].path.startswith(f"/{version}/models/")


def test_cached_input_is_counted_apart(adapter):
    long = {"contents": [{"parts": [{"text": "Shared context. " * 400}]}]}
    send(adapter, fake_gemini_key(), generate(long))
    again = send(adapter, fake_gemini_key(), generate(long))
    cached = again.body["usageMetadata"]["cachedContentTokenCount"]
    assert again.usage.cache_read_input_tokens == cached
    assert again.usage.input_tokens == again.body["usageMetadata"]["promptTokenCount"] - cached


def test_count_tokens_embeddings_and_models(adapter):
    key = fake_gemini_key()
    counted = send(adapter, key, generate(operation="countTokens"))
    assert counted.body["totalTokens"] > 0
    embed = {"content": {"parts": [{"text": "one"}]}, "outputDimensionality": 8}
    single = send(
        adapter, key, RelayRequest("embedContent", body=embed, model="gemini-embedding-001")
    )
    assert len(single.body["embedding"]["values"]) == 8
    batch = {"requests": [{"model": "models/gemini-embedding-001", **embed}] * 2}
    many = send(
        adapter, key, RelayRequest("batchEmbedContents", body=batch, model="gemini-embedding-001")
    )
    assert len(many.body["embeddings"]) == 2
    listed = send(adapter, key, RelayRequest("models.list", params={"pageSize": "2"}))
    assert len(listed.body["models"]) == 2
    assert listed.body["nextPageToken"]


def test_a_stream_is_relayed_byte_for_byte_and_metered(adapter):
    whole = send(adapter, fake_gemini_key(), generate())
    opened, raw = stream(adapter, fake_gemini_key(), generate(operation="streamGenerateContent"))
    events = [e for e in raw.split(b"\r\n\r\n") if e]
    assert len(events) > 1
    assert all(e.startswith(b"data: {") for e in events)
    assert opened.summary.finished
    assert opened.summary.usage == whole.usage
    assert opened.summary.model == MODEL


def test_a_stream_that_breaks_keeps_an_estimate_and_the_error(adapter):
    long = {"contents": [{"parts": [{"text": "A long story " * 20}]}]}
    opened, _ = stream(
        adapter, fake_gemini_key("streamerror"), generate(long, "streamGenerateContent")
    )
    assert not opened.summary.finished
    assert opened.summary.usage.output_tokens > opened.summary.usage.reasoning_output_tokens
    assert isinstance(opened.summary.error, ProviderUnavailableError)


def test_a_bad_request_says_what_google_said(gemini_standin, adapter):
    with pytest.raises(ProviderRequestError) as caught:
        send(adapter, fake_gemini_key(), RelayRequest("generateContent", body=HELLO, model="x-0"))
    assert caught.value.status_code == 404
    assert "not found" in caught.value.message
    # A model name that would change the request's path is refused before any request.
    with pytest.raises(ProviderRequestError):
        send(adapter, fake_gemini_key(), RelayRequest("generateContent", body=HELLO, model="../x"))
    assert len(gemini_standin.requests) == 1
