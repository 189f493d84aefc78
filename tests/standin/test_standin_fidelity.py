"""The stand-in behaves as Anthropic's API does where the gateway's clients depend on it:
list paging, unknown models, request ids, retry headers, and tool calls only when the
conversation calls for one. Checked with the official SDK as its client."""

import anthropic
import httpx2
import pytest

from tests.anthropic_standin import MODELS
from tests.factories import fake_key

MODEL = "claude-sonnet-5"
WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
BASH = {
    "name": "Bash",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}


@pytest.fixture
def client(standin):
    return anthropic.Anthropic(base_url=standin.url, api_key=fake_key(), max_retries=0)


def test_model_pages_follow_after_id_and_before_id(client):
    ids = [model["id"] for model in MODELS]

    first = client.models.list(limit=1)
    second = client.models.list(limit=1, after_id=first.last_id)
    back = client.models.list(limit=1, before_id=second.first_id)
    everything = [model.id for model in client.models.list(limit=1)]  # auto-pagination

    assert ([m.id for m in first.data], first.has_more) == ([ids[0]], True)
    assert [m.id for m in second.data] == [ids[1]]
    assert ([m.id for m in back.data], back.has_more) == ([ids[0]], False)
    assert everything == ids
    last = client.models.list(limit=1, after_id=ids[-1])
    assert (last.data, last.has_more, last.first_id, last.last_id) == ([], False, None, None)


def test_an_unknown_model_is_a_404(client):
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-imaginary-9")
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(
            model="gpt-4o", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.body["error"] == {"type": "not_found_error", "message": "model: gpt-4o"}


def test_every_answer_has_a_request_id(client, standin):
    plain = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    with client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}], stream=True
    ) as streamed:
        streamed.read()
    missing = httpx2.get(f"{standin.url}/v1/nothing")

    for headers in (plain.headers, streamed.headers, missing.headers):
        assert headers["request-id"].startswith("req_standin_")


@pytest.mark.parametrize(
    ("behavior", "advice"),
    [
        ("ratelimited", {"retry-after": "1", "x-should-retry": "true"}),
        ("overloaded", {}),
        ("servererror", {}),
        ("revoked", {}),
    ],
)
def test_retry_headers_only_as_anthropic_sends_them(standin, behavior, advice):
    key = fake_key()
    standin.set_behavior(key, behavior)

    response = httpx2.get(f"{standin.url}/v1/models", headers={"x-api-key": key})

    sent = {name: response.headers.get(name) for name in ("retry-after", "x-should-retry")}
    assert {name: value for name, value in sent.items() if value} == advice


def test_with_tools_a_greeting_is_answered_in_text(client):
    message = client.messages.create(
        model=MODEL,
        max_tokens=64,
        tools=[BASH, WEATHER],
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "<system-reminder>Bash, weather, tasks</system-reminder>",
                    },
                    {"type": "text", "text": "say hi"},
                ],
            }
        ],
    )

    assert message.stop_reason == "end_turn"
    assert [block.type for block in message.content] == ["text"]


def test_a_tool_is_called_when_the_user_names_it(client):
    message = client.messages.create(
        model=MODEL,
        max_tokens=64,
        tools=[BASH, WEATHER],
        messages=[{"role": "user", "content": "What is the weather in Lyon?"}],
    )

    assert message.stop_reason == "tool_use"
    assert [block.name for block in message.content if block.type == "tool_use"] == ["get_weather"]
