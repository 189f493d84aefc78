"""The Gemini stand-in, driven through the official ``google-genai`` SDK: the requests a real
program sends, read back through the SDK's own types."""

import json

import httpx2
import pytest
from google import genai
from google.genai import errors, types

from tests.factories import fake_gemini_key

MODEL = "gemini-2.5-flash"


def client_for(gemini_standin, key, api_version=None, timeout_ms=None):
    options = types.HttpOptions(
        base_url=gemini_standin.base_url, api_version=api_version, timeout=timeout_ms
    )
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture
def client(gemini_standin):
    return client_for(gemini_standin, fake_gemini_key())


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_models_are_listed_under_both_versions_with_the_key_in_its_header(gemini_standin, version):
    key = fake_gemini_key()
    client = client_for(gemini_standin, key, api_version=version)
    names = [m.name for m in client.models.list()]
    assert "models/gemini-2.5-flash" in names
    request = gemini_standin.requests[0]
    assert request.path.startswith(f"/{version}/models")
    assert request.headers["x-goog-api-key"] == key
    assert key not in request.path


def test_models_page_like_the_api(gemini_standin, client):
    pager = client.models.list(config={"page_size": 1})
    assert len(pager.page) == 1
    assert len(list(pager)) == 3


def test_generate_content_answers_with_its_usage(client):
    response = client.models.generate_content(model=MODEL, contents="Hello there, stand-in")
    assert "Hello there, stand-in" in response.text
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage.thoughts_token_count > 0
    assert usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    )


def test_thinking_can_be_turned_off_and_thoughts_count_against_the_limit(client):
    off = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0))
    plain = client.models.generate_content(model=MODEL, contents="Hi", config=off)
    assert plain.usage_metadata.thoughts_token_count is None

    tight = client.models.generate_content(
        model=MODEL, contents="Hi", config=types.GenerateContentConfig(max_output_tokens=50)
    )
    assert tight.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    usage = tight.usage_metadata
    assert usage.thoughts_token_count + usage.candidates_token_count == 50


def test_a_stream_carries_usage_metadata_on_every_chunk(client):
    whole = client.models.generate_content(model=MODEL, contents="Tell me a long story please")
    chunks = list(
        client.models.generate_content_stream(model=MODEL, contents="Tell me a long story please")
    )
    assert len(chunks) > 1
    assert all(c.usage_metadata.prompt_token_count for c in chunks)
    assert "".join(c.text for c in chunks) == whole.text
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.total_token_count == whole.usage_metadata.total_token_count
    assert last.usage_metadata.candidates_token_count == (
        whole.usage_metadata.candidates_token_count
    )


def test_the_stream_is_server_sent_events_when_asked(gemini_standin):
    key = fake_gemini_key()
    url = f"{gemini_standin.url}/v1beta/models/{MODEL}:streamGenerateContent"
    body = {"contents": [{"parts": [{"text": "Hi"}]}]}
    events = httpx2.post(url + "?alt=sse", json=body, headers={"x-goog-api-key": key})
    assert events.headers["content-type"].startswith("text/event-stream")
    assert events.text.startswith("data: {")
    array = httpx2.post(url, json=body, headers={"x-goog-api-key": key})
    assert isinstance(array.json(), list)


def test_a_repeated_long_prompt_reads_from_the_implicit_cache(client):
    long = "The project's long shared context. " * 200
    first = client.models.generate_content(model=MODEL, contents=long)
    second = client.models.generate_content(model=MODEL, contents=long)
    assert first.usage_metadata.cached_content_token_count is None
    assert second.usage_metadata.cached_content_token_count == (
        second.usage_metadata.prompt_token_count
    )


def test_count_tokens_matches_what_generation_reports(client):
    counted = client.models.count_tokens(model=MODEL, contents="Count these words for me")
    generated = client.models.generate_content(model=MODEL, contents="Count these words for me")
    assert counted.total_tokens == generated.usage_metadata.prompt_token_count


def test_embeddings_through_the_sdk_and_embed_content_directly(gemini_standin, client):
    result = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["one", "two"],
        config=types.EmbedContentConfig(output_dimensionality=16),
    )
    assert [len(e.values) for e in result.embeddings] == [16, 16]
    assert result.embeddings[0].values != result.embeddings[1].values
    assert gemini_standin.requests[-1].path.endswith(":batchEmbedContents")

    single = httpx2.post(
        f"{gemini_standin.url}/v1beta/models/gemini-embedding-001:embedContent",
        json={"content": {"parts": [{"text": "one"}]}, "outputDimensionality": 16},
        headers={"x-goog-api-key": fake_gemini_key()},
    )
    assert single.json()["embedding"]["values"] == pytest.approx(result.embeddings[0].values)


def test_a_bad_key_is_400_api_key_invalid_not_401(gemini_standin):
    for key in ("AIza-too-short", fake_gemini_key("revoked")):
        client = client_for(gemini_standin, key)
        with pytest.raises(errors.ClientError) as caught:
            client.models.generate_content(model=MODEL, contents="Hi")
        assert caught.value.code == 400
        assert caught.value.status == "INVALID_ARGUMENT"
        reasons = [d.get("reason") for d in caught.value.details["error"]["details"]]
        assert "API_KEY_INVALID" in reasons
        assert key not in json.dumps(caught.value.details)


@pytest.mark.parametrize(
    ("marker", "code", "status"),
    [
        ("forbidden", 403, "PERMISSION_DENIED"),
        ("ratelimited", 429, "RESOURCE_EXHAUSTED"),
        ("servererror", 500, "INTERNAL"),
        ("overloaded", 503, "UNAVAILABLE"),
    ],
)
def test_errors_come_as_google_rpc_status(gemini_standin, marker, code, status):
    client = client_for(gemini_standin, fake_gemini_key(marker))
    with pytest.raises(errors.APIError) as caught:
        client.models.list()
    assert caught.value.code == code
    assert caught.value.status == status


def test_an_unknown_model_is_not_found(client):
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-0", contents="Hi")
    assert caught.value.code == 404
    assert caught.value.status == "NOT_FOUND"


def test_a_stream_that_fails_midway_raises_in_the_sdk(gemini_standin):
    client = client_for(gemini_standin, fake_gemini_key("streamerror"))
    with pytest.raises(errors.ServerError):
        list(client.models.generate_content_stream(model=MODEL, contents="A long story " * 10))


def test_slow_and_dropped_connections(gemini_standin):
    gemini_standin.state.timeout_sleep = 1.0
    slow = client_for(gemini_standin, fake_gemini_key("timeout"), timeout_ms=200)
    with pytest.raises(httpx2.TimeoutException):
        slow.models.list()
    dropped = client_for(gemini_standin, fake_gemini_key("connreset"))
    with pytest.raises(httpx2.TransportError):
        dropped.models.list()
