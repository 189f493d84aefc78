"""The stand-in bills server tools, fast mode and US-only inference the way Anthropic
documents them, in the shapes the official SDK parses (see the comments in
tests/anthropic_standin.py for the pages)."""

import anthropic
import pytest

from tests import anthropic_standin
from tests.factories import fake_key

WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
WEB_FETCH = {"type": "web_fetch_20250910", "name": "web_fetch"}
CODE = {"type": "code_execution_20250825", "name": "code_execution"}


@pytest.fixture
def client(standin):
    return anthropic.Anthropic(base_url=standin.url, api_key=fake_key(), max_retries=0)


def ask(**extra):
    return dict(
        model="claude-sonnet-5",
        max_tokens=200,
        messages=[{"role": "user", "content": "What happened today?"}],
        **extra,
    )


def test_web_search_is_a_server_tool_use_and_a_result_and_counted_in_usage(client):
    plain = client.messages.create(**ask())
    searched = client.messages.create(**ask(tools=[WEB_SEARCH]))

    kinds = [b.type for b in searched.content]
    assert kinds == ["server_tool_use", "web_search_tool_result", "text"]
    use, result = searched.content[:2]
    assert (use.name, result.tool_use_id) == ("web_search", use.id)
    assert searched.usage.server_tool_use.web_search_requests == 1
    assert searched.usage.server_tool_use.web_fetch_requests == 0
    # The results are billed as input tokens.
    extra = searched.usage.input_tokens - plain.usage.input_tokens
    assert extra >= anthropic_standin.WEB_SEARCH_RESULT_TOKENS


def test_searches_per_request_follow_the_setting_and_max_uses(client, monkeypatch):
    monkeypatch.setattr(anthropic_standin, "WEB_SEARCHES_PER_REQUEST", 5)
    usage = client.messages.create(**ask(tools=[WEB_SEARCH])).usage
    assert usage.server_tool_use.web_search_requests == 3  # max_uses


def test_web_fetch_and_code_execution_shapes(client):
    message = client.messages.create(**ask(tools=[WEB_FETCH, CODE]))
    assert [b.type for b in message.content] == [
        "server_tool_use",
        "web_fetch_tool_result",
        "server_tool_use",
        "bash_code_execution_tool_result",
        "text",
    ]
    assert message.usage.server_tool_use.web_fetch_requests == 1


def test_a_streamed_server_tool_answer_is_the_same_message(client):
    request = ask(tools=[WEB_SEARCH, WEB_FETCH])
    with client.messages.stream(**request) as stream:
        final = stream.get_final_message()
    plain = client.messages.create(**request)
    assert final.model_dump(exclude={"id"}) == plain.model_dump(exclude={"id"})
    assert final.usage.server_tool_use.web_search_requests == 1


def test_speed_and_inference_geo_are_reported_in_usage(client):
    usage = client.messages.create(**ask(speed="fast", inference_geo="us")).usage
    assert (usage.speed, usage.inference_geo) == ("fast", "us")
    plain = client.messages.create(**ask()).usage
    assert (plain.speed, plain.inference_geo) == (None, None)
