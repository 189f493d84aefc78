"""OpenAI and Gemini streams that break midway, through ``make serve`` with the official
``openai`` and ``google-genai`` SDKs: the provider sends an error event (``-streamerror``),
or goes silent past the gateway's read timeout (``-streamstall``).

Either way the client sees the error in that provider's own stream shape, and the request is
recorded once, charged what was produced before the break.
"""

import math

import openai
import pytest
from google.genai import errors as genai_errors
from openai.types.responses import ResponseErrorEvent

from tests.served_app.test_provider_apis_served import (
    GEMINI_FLASH,
    GEMINI_PLATFORM,
    GPT_5_MINI,
    OPENAI_PLATFORM,
    balance,
    gem,
    oai,
    row_count,
    serve_with_providers,
    streamed_row,
)

pytestmark = pytest.mark.served

# The stand-in's stall (``timeout_sleep``, 2 s in tests) outlasts the gateway's read timeout.
READ_TIMEOUT_SECONDS = "1"
LONG_ANSWER_WORDS = 40


@pytest.fixture(scope="module")
def app(request):
    return serve_with_providers(request, AI_REQUEST_TIMEOUT_SECONDS=READ_TIMEOUT_SECONDS)


SLUG = "pb-breaks"


@pytest.fixture(scope="module")
def token(app):
    """One workspace on AI credits for every test here (each measures its own request)."""
    app.workspace(SLUG, admin=f"admin@{SLUG}.test")
    app.manage("grant_credits", SLUG, "10000000", "--reason", "served test")
    return app.api_token(SLUG, "ci job")


@pytest.fixture
def before(app, token):
    """The workspace's rows per provider and balance before the test's request."""
    return {
        "openai": row_count(app, SLUG, "openai"),
        "gemini": row_count(app, SLUG, "gemini"),
        "balance": balance(app, SLUG),
    }


def charged_once_for_what_was_produced(app, provider, prices, before):
    """The one usage row of the broken stream: a provider error, charged its own tokens
    seen, or its reservation if more: these models reason unseen, and a stream cut before
    its final usage is charged at least its reservation for that (decision 103)."""
    row = streamed_row(app, SLUG, provider, before=before[provider])
    assert row_count(app, SLUG, provider) == before[provider] + 1
    assert row["outcome"] == "provider_error" and row["source"] == "platform"
    assert row["output"] > 0  # the words relayed before the break
    fresh = row["input"] - row["cache_read"]
    seen = math.ceil((fresh * prices["input"] + row["output"] * prices["output"]) / 1_000_000)
    assert row["charged"] >= seen > 0
    assert balance(app, SLUG) == before["balance"] - row["charged"]
    return row


@pytest.mark.parametrize("behavior", ["streamerror", "streamstall"])
def test_openai_chat_stream_break_raises_the_sdks_error(
    app, token, before, openai_standin, behavior
):
    openai_standin.state.answer_words = LONG_ANSWER_WORDS
    openai_standin.set_behavior(OPENAI_PLATFORM, behavior)

    stream = oai(app, token).chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "Tell me more"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            received.extend(choice.delta.content or "" for choice in chunk.choices)

    assert "".join(received)  # part of the answer came first
    # OpenAI's own event passed on as it came; the stall told by the gateway, in that shape.
    expected_code = None if behavior == "streamerror" else "timeout"
    assert (raised.value.type, raised.value.code) == ("server_error", expected_code)
    charged_once_for_what_was_produced(app, "openai", GPT_5_MINI, before)


@pytest.mark.parametrize("behavior", ["streamerror", "streamstall"])
def test_openai_responses_stream_break_is_the_responses_error_event(
    app, token, before, openai_standin, behavior
):
    openai_standin.state.answer_words = LONG_ANSWER_WORDS
    openai_standin.set_behavior(OPENAI_PLATFORM, behavior)

    events = list(
        oai(app, token).responses.create(model="gpt-5-mini", input="Tell me more", stream=True)
    )

    # The SDK yields the Responses API's own error event, numbered after the others.
    *earlier, last = events
    assert isinstance(last, ResponseErrorEvent)
    assert any(event.type == "response.output_text.delta" for event in earlier)
    assert last.sequence_number == earlier[-1].sequence_number + 1
    assert last.code == ("server_error" if behavior == "streamerror" else "timeout")
    assert last.message
    charged_once_for_what_was_produced(app, "openai", GPT_5_MINI, before)


@pytest.mark.parametrize(("behavior", "code"), [("streamerror", 500), ("streamstall", 503)])
def test_gemini_stream_break_raises_the_sdks_error(
    app, token, before, gemini_standin, behavior, code
):
    gemini_standin.state.answer_words = LONG_ANSWER_WORDS
    gemini_standin.set_behavior(GEMINI_PLATFORM, behavior)

    client = gem(app, token)  # kept: a collected client closes its connections
    stream = client.models.generate_content_stream(
        model="gemini-2.5-flash", contents="Tell me more"
    )
    received = []
    with pytest.raises(genai_errors.APIError) as raised:
        for chunk in stream:
            received.append(chunk.text or "")

    assert "".join(received)
    assert raised.value.code == code
    charged_once_for_what_was_produced(app, "gemini", GEMINI_FLASH, before)
