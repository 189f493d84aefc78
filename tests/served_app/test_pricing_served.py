"""Every billable dimension priced, or refused on credits (issue 19, items 4 and 6), through
``make serve`` with the official SDK as the client and the stand-in billing as Anthropic
documents: the charge is what the provider's usage says at the price table's rates."""

import json
import math

import anthropic
import pytest
from django.conf import settings

from tests.served import PLATFORM_KEY

pytestmark = pytest.mark.served

BYOK_KEY = "sk-ant-api03-served0pricing0byok0key00000000000000000000PRCE"
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def tokens(served):
    made = {}
    for slug in ("price-credits", "price-byok"):
        served.workspace(slug, admin=f"admin@{slug}.test")
        made[slug] = served.api_token(slug, "pricing")
    served.manage("set_llm_key", "price-byok", "--no-check", stdin=BYOK_KEY + "\n")
    served.manage("grant_credits", "price-credits", "50000000", "--reason", "served test")
    return made


def sdk(app, token):
    return anthropic.Anthropic(base_url=f"{app.url}/anthropic", api_key=token, max_retries=0)


def messages_sent(standin):
    return [r for r in standin.requests if r.path == "/v1/messages"]


def last_row(served, slug):
    return served.database.rows(
        "SELECT r.outcome, r.credits_charged, r.input_tokens, r.output_tokens"
        " FROM ai_gateway_airequest r JOIN workspaces_workspace w ON w.id = r.workspace_id"
        f" WHERE w.slug = '{slug}' ORDER BY r.id DESC LIMIT 1"
    )[0]


def rows_of(served, slug):
    return served.database.rows(
        "SELECT count(*) FROM ai_gateway_airequest r"
        f" JOIN workspaces_workspace w ON w.id = r.workspace_id WHERE w.slug = '{slug}'"
    )[0][0]


@pytest.mark.parametrize(
    "override",
    [
        {"input_tokens": None},
        {"input_tokens": "12"},
        {"output_tokens": -5},
        {"input_tokens": 10**15},
        {"output_tokens": 2**63},
    ],
    ids=["missing", "string", "negative", "huge", "huge64"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_garbled_usage_never_breaks_the_answer(served, tokens, standin, override, stream):
    standin.set_usage_override(override)
    client = sdk(served, tokens["price-credits"])
    before = rows_of(served, "price-credits")

    if stream:
        with client.messages.stream(model="claude-sonnet-5", max_tokens=64, messages=HELLO) as s:
            text = "".join(s.text_stream)
    else:
        text = (
            client.messages.create(model="claude-sonnet-5", max_tokens=64, messages=HELLO)
            .content[0]
            .text
        )

    assert text == "Stand-in reply to: Hello"
    # One usage row, with counts a database column can hold (never a 500 on the insert).
    assert rows_of(served, "price-credits") == before + 1
    _, charged, input_tokens, output_tokens = last_row(served, "price-credits")
    assert 0 <= input_tokens < 2**31 and 0 <= output_tokens < 2**31
    assert charged >= 0
    assert PLATFORM_KEY in [r.api_key for r in messages_sent(standin)]


WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


def expected_credits(usage, *, input, output, percent=100, per_search=100):
    """What the provider's usage costs at these rates (credits per million tokens), rounded
    up once to a whole credit: the arithmetic a user can check against the price page."""
    tokens = usage.input_tokens * input + usage.output_tokens * output
    searches = usage.server_tool_use.web_search_requests if usage.server_tool_use else 0
    exact = tokens * percent + searches * per_search * 1_000_000 * 100
    return math.ceil(exact / 100_000_000)


def test_web_search_is_charged_per_search_on_credits(served, tokens, standin):
    client = sdk(served, tokens["price-credits"])
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-5", max_tokens=64, messages=HELLO, tools=[WEB_SEARCH]
    )
    message = raw.parse()

    assert message.usage.server_tool_use.web_search_requests == 1
    # Sonnet 5: $3 / $15 per MTok; a search is US$0.01 = 100 credits.
    expected = expected_credits(message.usage, input=30_000, output=150_000)
    assert int(raw.headers["x-credits-charged"]) == expected
    assert last_row(served, "price-credits")[:2] == ("ok", expected)


def test_a_streamed_web_search_is_charged_per_search(served, tokens, standin):
    client = sdk(served, tokens["price-credits"])
    with client.messages.stream(
        model="claude-sonnet-5", max_tokens=64, messages=HELLO, tools=[WEB_SEARCH]
    ) as stream:
        final = stream.get_final_message()

    expected = expected_credits(final.usage, input=30_000, output=150_000)
    assert final.usage.server_tool_use.web_search_requests == 1
    assert last_row(served, "price-credits")[:2] == ("ok", expected)


def test_fast_mode_is_charged_at_the_models_fast_rates(served, tokens, standin):
    client = sdk(served, tokens["price-credits"])
    raw = client.messages.with_raw_response.create(
        model="claude-opus-4-6",
        max_tokens=64,
        messages=HELLO,
        speed="fast",
        extra_headers={"anthropic-beta": "fast-mode-2026-02-01"},
    )
    usage = raw.parse().usage

    assert usage.speed == "fast"
    # Opus 4.6: $5 / $25 per MTok, six times that in fast mode ($30 / $150).
    expected = expected_credits(usage, input=50_000, output=250_000, percent=600)
    assert int(raw.headers["x-credits-charged"]) == expected
    assert messages_sent(standin)[-1].body["speed"] == "fast"


def test_us_only_inference_is_charged_a_tenth_more(served, tokens, standin):
    client = sdk(served, tokens["price-credits"])
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=HELLO, inference_geo="us"
    )
    usage = raw.parse().usage

    assert usage.inference_geo == "us"
    expected = expected_credits(usage, input=30_000, output=150_000, percent=110)
    assert int(raw.headers["x-credits-charged"]) == expected


# The SDK warns that Sonnet 4.5 is deprecated; its long-context rates are what is tested.
@pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5' is deprecated:DeprecationWarning")
def test_a_long_prompt_is_charged_at_the_long_context_rates(served, tokens, standin):
    # Sonnet 4.5 with the 1M context bills the whole request at $6 / $22.50 per MTok once
    # the prompt passes 200k tokens; the stand-in reports such a prompt.
    standin.set_usage_override({"input_tokens": 250_000, "output_tokens": 10})
    client = sdk(served, tokens["price-credits"])
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=HELLO,
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )

    # 250,000 x 60,000 / 1M + 10 x 225,000 / 1M = 15,000 + 2.25, rounded up.
    assert int(raw.headers["x-credits-charged"]) == 15_003


UNPRICED = [
    ({"model": "claude-opus-5", "speed": "fast"}, {}, "speed 'fast'"),
    ({"model": "claude-haiku-4-5", "inference_geo": "us"}, {}, "inference_geo 'us'"),
    (
        {"tools": [{"type": "code_execution_20250825", "name": "code_execution"}]},
        {},
        "tool type 'code_execution_20250825'",
    ),
    ({"extra_body": {"brand_new_knob": 3}}, {}, "field 'brand_new_knob'"),
    ({}, {"anthropic-beta": "some-new-feature-2027-01-01"}, "'some-new-feature-2027-01-01'"),
]


@pytest.mark.parametrize("fields,headers,named", UNPRICED, ids=[u[2] for u in UNPRICED])
def test_what_the_table_cannot_price_is_refused_on_credits(
    served, tokens, standin, fields, headers, named
):
    request = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": HELLO, **fields}
    before = rows_of(served, "price-credits")

    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk(served, tokens["price-credits"]).messages.create(**request, extra_headers=headers)

    error = refused.value.body["error"]
    assert error["type"] == "invalid_request_error"
    assert named in error["message"]
    assert "own Anthropic key" in error["message"]
    assert messages_sent(standin) == []  # refused before any provider call
    assert rows_of(served, "price-credits") == before + 1
    assert last_row(served, "price-credits")[:2] == ("bad_request", 0)


@pytest.mark.parametrize("fields,headers,named", UNPRICED, ids=[u[2] for u in UNPRICED])
def test_what_the_table_cannot_price_passes_on_the_workspace_key(
    served, tokens, standin, fields, headers, named
):
    request = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": HELLO, **fields}

    raw = sdk(served, tokens["price-byok"]).messages.with_raw_response.create(
        **request, extra_headers=headers
    )

    assert raw.headers["x-credential-source"] == "byok"
    [sent] = messages_sent(standin)
    assert sent.api_key == BYOK_KEY
    assert sent.anthropic_beta == (headers.get("anthropic-beta") or None)


def test_the_usage_row_stores_the_prices_it_was_charged_at(served, tokens, standin):
    sdk(served, tokens["price-credits"]).messages.create(
        model="claude-sonnet-5", max_tokens=64, messages=HELLO
    )

    [(prices,)] = served.database.rows(
        "SELECT r.prices FROM ai_gateway_airequest r"
        " JOIN workspaces_workspace w ON w.id = r.workspace_id"
        " WHERE w.slug = 'price-credits' ORDER BY r.id DESC LIMIT 1"
    )
    prices = json.loads(prices) if isinstance(prices, str) else prices
    assert (prices["input"], prices["output"], prices["web_search"]) == (30_000, 150_000, 100)
    # The version in force now: the newest of the table.
    assert prices["effective_from"] == settings.AI_MODEL_PRICE_VERSIONS[-1]["effective_from"]
