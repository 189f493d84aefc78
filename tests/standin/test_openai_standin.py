"""The OpenAI stand-in, driven through the official ``openai`` SDK: the requests a real program
sends, read back through the SDK's own types."""

import openai
import pytest

from tests.factories import fake_openai_key

MODEL = "gpt-5-mini"
HELLO = [{"role": "user", "content": "Hello there, stand-in"}]


@pytest.fixture
def client(openai_standin):
    return openai.OpenAI(base_url=openai_standin.base_url, api_key=fake_openai_key(), max_retries=0)


def client_for(openai_standin, key, **options):
    return openai.OpenAI(base_url=openai_standin.base_url, api_key=key, max_retries=0, **options)


def test_models_are_listed_and_the_key_travels_as_a_bearer_token(openai_standin):
    key = fake_openai_key()
    models = client_for(openai_standin, key).models.list()
    assert "gpt-5-mini" in [m.id for m in models.data]
    assert openai_standin.keys_seen() == [key]


def test_a_chat_completion_answers_with_its_usage(client):
    completion = client.chat.completions.create(model=MODEL, messages=HELLO)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert "Hello there, stand-in" in choice.message.content
    usage = completion.usage
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_a_stream_reports_usage_only_when_asked(client):
    plain = client.chat.completions.create(model=MODEL, messages=HELLO)

    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content

    counted = list(
        client.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert len(counted) == len(chunks) + 1
    last = counted[-1]
    assert last.choices == []
    assert last.usage.completion_tokens == plain.usage.completion_tokens
    assert last.usage.prompt_tokens == plain.usage.prompt_tokens
    assert all(chunk.usage is None for chunk in counted[:-1])


def test_the_output_limit_cuts_the_answer(client):
    completion = client.chat.completions.create(
        model="gpt-4.1-mini", messages=HELLO, max_completion_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3
    assert len(completion.choices[0].message.content.split()) == 3


def test_reasoning_tokens_count_as_output_unless_effort_is_minimal(client):
    thinking = client.chat.completions.create(model=MODEL, messages=HELLO)
    minimal = client.chat.completions.create(
        model=MODEL, messages=HELLO, reasoning_effort="minimal"
    )
    reasoning = thinking.usage.completion_tokens_details.reasoning_tokens
    assert reasoning > 0
    assert minimal.usage.completion_tokens_details.reasoning_tokens == 0
    assert thinking.usage.completion_tokens == minimal.usage.completion_tokens + reasoning


def test_a_repeated_long_prompt_reads_from_the_cache(client):
    long = [{"role": "user", "content": "The project's long shared context. " * 200}]
    first = client.chat.completions.create(model=MODEL, messages=long)
    second = client.chat.completions.create(model=MODEL, messages=long)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert 0 < cached <= second.usage.prompt_tokens
    assert cached % 128 == 0


def test_a_response_plain_and_streamed(client):
    response = client.responses.create(model=MODEL, input="Tell me about the stand-in")
    assert "Tell me about the stand-in" in response.output_text
    assert response.usage.output_tokens > response.usage.output_tokens_details.reasoning_tokens

    events = list(client.responses.create(model=MODEL, input="Tell me about it", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    completed = events[-1].response
    assert deltas == completed.output_text
    assert completed.usage.total_tokens == (
        completed.usage.input_tokens + completed.usage.output_tokens
    )


def test_embeddings_as_floats_and_as_the_sdks_default_base64(client):
    as_floats = client.embeddings.create(
        model="text-embedding-3-small", input=["one", "two"], encoding_format="float"
    )
    by_default = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    assert [len(d.embedding) for d in by_default.data] == [1536, 1536]
    assert by_default.data[0].embedding == pytest.approx(as_floats.data[0].embedding, abs=1e-6)
    assert by_default.data[0].embedding != by_default.data[1].embedding
    assert by_default.usage.prompt_tokens > 0

    short = client.embeddings.create(model="text-embedding-3-small", input="one", dimensions=8)
    assert len(short.data[0].embedding) == 8


@pytest.mark.parametrize(
    ("marker", "error", "status", "code"),
    [
        ("revoked", openai.AuthenticationError, 401, "invalid_api_key"),
        ("forbidden", openai.PermissionDeniedError, 403, "unsupported_country_region_territory"),
        ("ratelimited", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("servererror", openai.InternalServerError, 500, None),
        ("overloaded", openai.InternalServerError, 503, "server_is_overloaded"),
    ],
)
def test_errors_come_in_openais_shape(openai_standin, marker, error, status, code):
    key = fake_openai_key(marker)
    with pytest.raises(error) as caught:
        client_for(openai_standin, key).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == status
    assert caught.value.code == code
    assert set(caught.value.body) >= {"message", "type", "param", "code"}
    assert key not in str(caught.value.body)
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"


def test_a_key_not_in_openais_shape_is_refused_as_incorrect(openai_standin):
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for(openai_standin, "not-an-openai-key").models.list()
    assert caught.value.code == "invalid_api_key"
    assert "Incorrect API key provided" in caught.value.message


def test_an_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-0", messages=HELLO)
    assert caught.value.code == "model_not_found"


def test_a_stream_that_fails_midway_raises_in_the_sdk(openai_standin):
    stream = client_for(openai_standin, fake_openai_key("streamerror")).chat.completions.create(
        model=MODEL, messages=HELLO, stream=True
    )
    with pytest.raises(openai.APIError, match="server had an error"):
        list(stream)


def test_slow_and_dropped_connections(openai_standin):
    openai_standin.state.timeout_sleep = 1.0
    slow = client_for(openai_standin, fake_openai_key("timeout"), timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        slow.models.list()
    dropped = client_for(openai_standin, fake_openai_key("connreset"))
    with pytest.raises(openai.APIConnectionError):
        dropped.models.list()


def test_a_behaviour_set_for_a_key_wins_over_its_shape(openai_standin):
    key = fake_openai_key()
    openai_standin.set_behavior(key, "revoked")
    with pytest.raises(openai.AuthenticationError):
        client_for(openai_standin, key).models.list()
