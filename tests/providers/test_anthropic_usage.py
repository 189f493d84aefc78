"""The adapter checks the usage Anthropic reports before anyone charges it (issue 19, item 6):
counts must be non-negative integers within bounds; otherwise ``Usage.problem`` says why, and
a missing count never becomes a silent 0. Through the real SDK against the stand-in."""

import pytest
from asgiref.sync import async_to_sync

from providers import get_adapter
from providers.anthropic import MAX_REPORTED_INPUT_TOKENS, _usage_from_json
from tests.factories import fake_key

BODY = {
    "model": "claude-sonnet-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Count me"}],
}
GARBLED = [
    ({"input_tokens": None}, "missing"),
    ({"output_tokens": None}, "missing"),
    ({"input_tokens": "12"}, "not an integer"),
    ({"output_tokens": 2.5}, "not an integer"),
    ({"cache_read_input_tokens": True}, "not an integer"),
    ({"input_tokens": -5}, "negative"),
    ({"cache_creation": {"ephemeral_1h_input_tokens": -1}}, "negative"),
    ({"input_tokens": 10**15}, "too large"),
    ({"output_tokens": 2**63}, "too large"),
    ({"server_tool_use": {"web_search_requests": "two"}}, "not an integer"),
    ({"server_tool_use": {"web_search_requests": -1}}, "negative"),
]


def _create(standin, override):
    standin.set_usage_override(override)
    return get_adapter("anthropic").create_message(api_key=fake_key(), body=BODY).usage


async def _stream_usage(body):
    stream = await get_adapter("anthropic").astream_message(
        api_key=fake_key(), body=body, headers={}
    )
    async for _chunk in stream:
        pass
    return stream.summary.usage


def test_trustworthy_usage_has_no_problem_and_every_dimension(standin):
    usage = _create(
        standin,
        {
            "input_tokens": 120,
            "output_tokens": 7,
            "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1},
            "speed": "fast",
            "inference_geo": "us",
        },
    )
    assert usage.problem is None
    assert (usage.input_tokens, usage.output_tokens) == (120, 7)
    assert (usage.web_search_requests, usage.web_fetch_requests) == (2, 1)
    assert (usage.speed, usage.inference_geo, usage.service_tier) == ("fast", "us", "standard")


@pytest.mark.parametrize("override,problem", GARBLED)
def test_garbled_usage_of_an_answer_is_marked_untrusted(standin, override, problem):
    usage = _create(standin, override)
    assert usage.problem == problem
    # Whatever was garbled is not passed on as a count (the row's columns stay valid).
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens"):
        value = getattr(usage, name)
        assert isinstance(value, int) and 0 <= value <= MAX_REPORTED_INPUT_TOKENS


@pytest.mark.parametrize("override,problem", GARBLED)
def test_garbled_usage_of_a_stream_is_marked_untrusted(standin, override, problem):
    standin.set_usage_override(override)
    usage = async_to_sync(_stream_usage)(BODY)
    assert usage.problem == problem


def test_a_stream_with_trustworthy_usage_has_no_problem(standin):
    usage = async_to_sync(_stream_usage)(BODY)
    assert usage.problem is None
    assert usage.input_tokens > 0 and usage.output_tokens > 0


@pytest.mark.parametrize("usage", [None, "12", [], {}, {"input_tokens": 3}])
def test_an_answer_without_usage_is_missing_not_zero(usage):
    assert _usage_from_json(usage).problem == "missing"


def test_a_message_delta_without_output_tokens_is_missing():
    from providers.anthropic import _merge_usage

    start = _usage_from_json({"input_tokens": 10, "output_tokens": 1})
    assert start.problem is None
    assert _merge_usage(start, {"output_tokens": 30}).problem is None
    assert _merge_usage(start, {}).problem == "missing"
    assert _merge_usage(start, None).problem == "missing"
