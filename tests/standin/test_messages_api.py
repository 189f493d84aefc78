"""The stand-in speaks the whole Messages API, checked with the official SDK as its client:
the same requests a real program sends, parsed by the SDK's own types and accumulator."""

import re

import anthropic
import pytest

from tests.factories import fake_key
from tests.media import image_block, pdf, pdf_block, png

MODEL = "claude-sonnet-5"
WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
    },
}
CLOCK = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
LONG = "Facts about the project, repeated so the prefix is worth caching. " * 40


@pytest.fixture
def client(standin):
    return anthropic.Anthropic(base_url=standin.url, api_key=fake_key(), max_retries=0)


def ask(text="Hello there", **extra) -> dict:
    return {
        "model": MODEL,
        "max_tokens": 2_000,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def without_ids(message) -> dict:
    dumped = message.model_dump()
    dumped.pop("id")
    return dumped


CASES = {
    "text": ask(),
    "text blocks and system blocks": ask(
        [{"type": "text", "text": "Hi"}, {"type": "text", "text": "again"}],
        system=[{"type": "text", "text": "Be brief."}],
    ),
    "tools, auto": ask("Weather in Paris?", tools=[WEATHER, CLOCK]),
    "tools, any": ask("Weather?", tools=[WEATHER], tool_choice={"type": "any"}),
    "tools, named": ask(
        "Time?", tools=[WEATHER, CLOCK], tool_choice={"type": "tool", "name": "get_time"}
    ),
    "tools, none": ask("Just talk", tools=[WEATHER], tool_choice={"type": "none"}),
    "thinking": ask("Why is the sky blue?", thinking={"type": "enabled", "budget_tokens": 1024}),
    "thinking and tools": ask(
        "Weather?", thinking={"type": "enabled", "budget_tokens": 1024}, tools=[WEATHER]
    ),
    "stop sequence": ask("count one two STOP three", stop_sequences=["STOP"]),
    "image": ask([image_block(png(800, 600)), {"type": "text", "text": "What is it?"}]),
    "document": ask([pdf_block(pdf(2)), {"type": "text", "text": "Summarise."}]),
    "cache 1h and 5m": ask(
        LONG,
        tools=[{**CLOCK, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        system=[{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}],
    ),
}


@pytest.mark.parametrize("request_body", CASES.values(), ids=CASES.keys())
def test_the_sdk_stream_accumulator_builds_the_same_message_as_a_plain_call(
    client, standin, request_body
):
    plain = client.messages.create(**request_body)
    standin.reset()  # a fresh cache, so both calls write the same prefix
    with client.messages.stream(**request_body) as stream:
        streamed = stream.get_final_message()
    assert without_ids(streamed) == without_ids(plain)
    assert plain.usage.input_tokens + (plain.usage.cache_creation_input_tokens or 0) > 0


def test_the_stream_events_come_in_the_apis_order(client):
    body = ask("Weather?", thinking={"type": "enabled", "budget_tokens": 1024}, tools=[WEATHER])
    with client.messages.with_streaming_response.create(**body, stream=True) as response:
        names = [
            line.removeprefix("event: ")
            for line in response.iter_lines()
            if line.startswith("event:")
        ]
    # The SDK skips pings; the wire has one, after the first block starts (as the API sends).
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names.count("ping") == 1
    events = list(client.messages.create(**body, stream=True))
    kinds = [e.type for e in events]
    assert kinds == [n for n in names if n != "ping"]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    blocks = [e.content_block.type for e in events if e.type == "content_block_start"]
    assert blocks == ["thinking", "text", "tool_use"]
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    first_text = deltas.index("text_delta")
    assert set(deltas[: first_text - 1]) == {"thinking_delta"}
    assert deltas[first_text - 1] == "signature_delta"
    assert deltas[-1] == "input_json_delta"
    starts = [i for i, e in enumerate(events) if e.type == "content_block_start"]
    stops = [i for i, e in enumerate(events) if e.type == "content_block_stop"]
    assert len(starts) == len(stops) == 3
    assert all(a < b for a, b in zip(starts, stops, strict=True))
    assert events[-2].delta.stop_reason == "tool_use"


def test_a_two_turn_tool_use_round_trip_with_the_tools_received_intact(client, standin):
    first = client.messages.create(**ask("Weather in Paris?", tools=[WEATHER]))
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.input == {"city": "stand-in", "unit": "celsius"}
    second = client.messages.create(
        model=MODEL,
        max_tokens=500,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "18°C, sunny"}
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "Stand-in reply to tool result: 18°C, sunny"
    bodies = [r.body for r in standin.requests]
    assert [b["tools"] for b in bodies] == [[WEATHER], [WEATHER]]
    assert bodies[1]["messages"][1]["content"][-1]["id"] == call.id


def test_max_tokens_cuts_the_answer(client):
    message = client.messages.create(**ask("one two three four five six", max_tokens=3))
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "Stand-in reply to:"
    assert message.usage.output_tokens == 3


def test_a_failing_stream_breaks_midway_whatever_the_answer_holds(client, standin):
    key = fake_key("streamerror")
    failing = anthropic.Anthropic(base_url=standin.url, api_key=key, max_retries=0)
    for body in (
        ask("Hello there friend"),
        ask("Weather?", tools=[WEATHER], tool_choice={"type": "any"}),
    ):
        with (
            pytest.raises(anthropic.APIStatusError, match="Overloaded"),
            failing.messages.stream(**body) as stream,
        ):
            for _ in stream:
                pass


def test_thinking_comes_first_signed(client):
    message = client.messages.create(
        **ask(thinking={"type": "enabled", "budget_tokens": 2000}, max_tokens=4000)
    )
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking and len(thinking.signature) > 40
    assert text.type == "text"


def test_stop_sequences_end_the_answer(client):
    message = client.messages.create(**ask("one two STOP three", stop_sequences=["STOP", "zzz"]))
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "STOP"
    assert message.content[0].text == "Stand-in reply to: one two "


def test_images_count_by_their_size_and_documents_by_their_pages(client):
    text_only = client.messages.create(**ask([{"type": "text", "text": "What is it?"}]))
    base = text_only.usage.input_tokens
    with_image = client.messages.create(
        **ask([image_block(png(1000, 1000)), {"type": "text", "text": "What is it?"}])
    )
    # 1000 x 1000 px is under the resize limits: ceil(1000/28)^2 = 1,296 patches.
    assert with_image.usage.input_tokens - base == pytest.approx(1_296, abs=30)
    unknown = client.messages.create(
        **ask([image_block("bm90IGFuIGltYWdl"), {"type": "text", "text": "What is it?"}])
    )
    assert unknown.usage.input_tokens - base == pytest.approx(1_600, abs=30)
    with_pdf = client.messages.create(
        **ask([pdf_block(pdf(3)), {"type": "text", "text": "What is it?"}])
    )
    assert with_pdf.usage.input_tokens - base == pytest.approx(3 * 2_500, abs=30)


def test_cache_writes_are_split_by_ttl_and_read_on_a_repeat(client):
    body = CASES["cache 1h and 5m"]
    first = client.messages.create(**body)
    creation = first.usage.cache_creation
    assert creation.ephemeral_1h_input_tokens > 0 and creation.ephemeral_5m_input_tokens > 0
    assert (
        creation.ephemeral_1h_input_tokens + creation.ephemeral_5m_input_tokens
        == first.usage.cache_creation_input_tokens
    )
    assert first.usage.cache_read_input_tokens == 0
    again = client.messages.create(**body)
    assert again.usage.cache_creation_input_tokens == 0
    assert again.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert again.usage.input_tokens == first.usage.input_tokens
    # Top-level cache_control caches the whole prompt, 5 minutes by default.
    auto = client.messages.create(**ask(LONG, cache_control={"type": "ephemeral"}))
    assert auto.usage.input_tokens == 0
    assert (
        auto.usage.cache_creation.ephemeral_5m_input_tokens
        == auto.usage.cache_creation_input_tokens
        > 0
    )


def test_count_tokens_answers_every_input_token_and_writes_no_cache(client, standin):
    body = CASES["cache 1h and 5m"]
    counted = client.messages.count_tokens(
        model=MODEL, messages=body["messages"], system=body["system"], tools=body["tools"]
    )
    message = client.messages.create(**body)
    usage = message.usage
    assert counted.input_tokens == (
        usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
    )
    assert usage.cache_read_input_tokens == 0
    assert standin.requests[0].path == "/v1/messages/count_tokens"


def test_request_id_and_rate_limit_headers_come_back(client):
    raw = client.messages.with_raw_response.create(**ask())
    assert raw.headers["request-id"].startswith("req_standin_")
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        for part in ("limit", "remaining", "reset"):
            assert raw.headers[f"anthropic-ratelimit-{kind}-{part}"]
    with client.messages.with_streaming_response.create(**ask(), stream=True) as streamed:
        assert streamed.headers["anthropic-ratelimit-requests-remaining"]
        assert streamed.headers["request-id"].startswith("req_standin_")


def test_every_field_and_the_version_and_beta_headers_are_recorded_intact(client, standin):
    body = ask(
        [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        system=[{"type": "text", "text": "Be brief."}],
        metadata={"user_id": "user-42"},
        service_tier="standard_only",
        stop_sequences=["END"],
        tools=[WEATHER],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    # SDK 2.14 dropped the sampling parameters from create(); older clients and curl still
    # send them, so they travel in the body as any unknown field would.
    sampling = {"temperature": 0.2, "top_p": 0.9, "top_k": 5}
    client.beta.messages.create(
        **body, betas=["interleaved-thinking-2025-05-14"], extra_body=sampling
    )
    recorded = standin.requests[-1]
    assert recorded.body == {**body, **sampling}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", recorded.anthropic_version)  # the SDK's own
    assert recorded.anthropic_beta == "interleaved-thinking-2025-05-14"
    client.messages.create(**ask(), extra_headers={"anthropic-version": "2023-06-01"})
    assert standin.requests[-1].anthropic_version == "2023-06-01"
    assert standin.requests[-1].anthropic_beta is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"temperature": 1.5}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"metadata": {"user_id": "x" * 300}}, "metadata.user_id"),
        ({"service_tier": "priority"}, "service_tier"),
        ({"thinking": {"type": "enabled", "budget_tokens": 5000}}, "budget_tokens"),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}}, "not found"),
    ],
)
def test_what_the_api_refuses_is_a_400_the_sdk_raises(client, extra, message):
    sampling = {k: extra.pop(k) for k in ("temperature", "top_k") if k in extra}
    with pytest.raises(anthropic.BadRequestError, match=message):
        client.messages.create(**ask(**extra), extra_body=sampling or None)


def test_a_usage_override_makes_the_answer_report_more(client, standin):
    standin.set_usage_override({"input_tokens": 123_456, "output_tokens": 7_890})
    plain = client.messages.create(**ask())
    with client.messages.stream(**ask()) as stream:
        streamed = stream.get_final_message()
    for message in (plain, streamed):
        assert (message.usage.input_tokens, message.usage.output_tokens) == (123_456, 7_890)
    standin.set_usage_override(None)
    assert client.messages.create(**ask()).usage.input_tokens < 100
