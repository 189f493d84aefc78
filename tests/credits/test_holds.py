"""The hold covers the most a request can cost whatever its content, and the charge is the
price table applied to the usage the provider reports, cache writes at their own TTL price.

The corpus goes through the official SDK to the stand-in (decision 082), whose usage is the
"real" usage here; the adapter's own parsing turns it into a ``Usage``."""

import math

import anthropic
import pytest

from credits.pricing import (
    MAX_CONTEXT_TOKENS,
    PDF_MAX_PAGES,
    TOKENS_PER_IMAGE,
    TOKENS_PER_PDF_PAGE,
    ModelPrice,
    cost,
    estimate_request_input_tokens,
    get_price,
    hold_amount,
    image_dimensions,
    image_tokens_bound,
    output_tokens_bound,
    pdf_pages_bound,
)
from providers.anthropic import _usage_from_json
from providers.base import Usage
from tests.credits.corpus import CORPUS
from tests.factories import fake_key
from tests.media import gif, image_block, jpeg, pdf, png, webp

HAIKU = ModelPrice(
    input=10_000, output=50_000, cache_read=1_000, cache_write=12_500, max_output_tokens=64_000
)
MODELS = ["claude-haiku-4-5", "claude-sonnet-5", "claude-haiku-5-5"]


def by_hand(price: ModelPrice, usage: Usage) -> int:
    """The price table applied to a usage, written out: credits per million tokens."""
    rates = price.for_prompt(
        usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    )
    micro = (
        usage.input_tokens * rates.input
        + usage.output_tokens * rates.output
        + usage.cache_read_input_tokens * rates.cache_read
        + usage.cache_creation_5m_input_tokens * rates.cache_write
        + usage.cache_creation_1h_input_tokens * rates.cache_write_1h
    )
    return math.ceil(micro / 1_000_000)


# --- prices ----------------------------------------------------------------------------------
def test_every_model_has_its_cache_write_prices_at_anthropics_multiples(settings):
    # Anthropic's cache-write multiples; OpenAI and Gemini bill caching their own way.
    claude = [model for model in settings.AI_MODEL_PRICES if model.startswith("claude-")]
    assert claude
    for model in claude:
        price = get_price(model)
        for rates in filter(None, (price, price.long_context)):
            assert rates.cache_write * 4 == rates.input * 5, model  # 1.25 x input
            assert rates.cache_write_1h == 2 * rates.input, model


def test_an_override_row_without_a_1h_price_gets_twice_its_input(settings):
    settings.AI_MODEL_PRICES = {
        "mine": dict(input=7, output=9, cache_read=1, cache_write=9, max_output_tokens=10)
    }
    assert get_price("mine").cache_write_1h == 14


def test_cache_writes_are_charged_by_their_ttl():
    five = Usage(cache_creation_input_tokens=10_000, cache_creation_5m_input_tokens=10_000)
    hour = Usage(cache_creation_input_tokens=10_000, cache_creation_1h_input_tokens=10_000)
    assert cost(HAIKU, five) == 125  # $1.25 / MTok
    assert cost(HAIKU, hour) == 200  # $2 / MTok
    both = Usage(
        cache_creation_input_tokens=3_000,
        cache_creation_5m_input_tokens=1_000,
        cache_creation_1h_input_tokens=2_000,
    )
    assert cost(HAIKU, both) == math.ceil((1_000 * 12_500 + 2_000 * 20_000) / 1e6)


def test_a_write_without_a_split_is_charged_at_the_5_minute_price():
    assert cost(HAIKU, Usage(cache_creation_input_tokens=8_000)) == 100


def test_the_adapter_reads_the_ttl_split_from_json_and_from_the_sdk():
    raw = {
        "input_tokens": 5,
        "output_tokens": 7,
        "cache_read_input_tokens": 11,
        "cache_creation_input_tokens": 30,
        "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
    }
    expected = Usage(5, 7, 11, 30, 10, 20)
    assert _usage_from_json(raw) == expected
    # The SDK's own type keeps the split when dumped (the streamed path reads it that way).
    assert _usage_from_json(anthropic.types.Usage.model_validate(raw).model_dump()) == expected
    assert _usage_from_json({"input_tokens": 1, "output_tokens": 2}) == Usage(1, 2)


# --- the pieces of the estimate ----------------------------------------------------------------
@pytest.mark.parametrize("make", [png, gif, jpeg, webp])
def test_image_sizes_are_read_from_every_supported_format(make):
    import base64

    assert image_dimensions(base64.b64decode(make(1234, 567))) == (1234, 567)


def test_an_image_is_held_by_its_size_and_capped():
    # The larger of Anthropic's two published rules: w x h / 750, and one per 28 px patch.
    assert image_tokens_bound(image_block(png(200, 200))) == 8 * 8  # > 40,000 / 750 = 54
    assert image_tokens_bound(image_block(png(28, 28))) == 2  # 784 / 750, rounded up
    assert image_tokens_bound(image_block(png(8000, 8000))) == TOKENS_PER_IMAGE
    assert image_tokens_bound(image_block("bm90IGFuIGltYWdl")) == TOKENS_PER_IMAGE
    url = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    assert image_tokens_bound(url) == TOKENS_PER_IMAGE


def test_a_jpeg_whose_size_comes_after_large_metadata_is_still_read():
    import base64

    # Three full APP1 (EXIF) segments, 196 KB, before the frame header with the size.
    metadata = (b"\xff\xe1\xff\xff" + b"\x00" * 65_533) * 3
    for width, height, expected in ((300, 200, 11 * 8), (3000, 2000, TOKENS_PER_IMAGE)):
        raw = base64.b64decode(jpeg(width, height))
        data = base64.b64encode(raw[:2] + metadata + raw[2:]).decode()
        assert image_tokens_bound(image_block(data, "image/jpeg")) == expected


def test_pdf_pages_are_counted_or_bounded_by_size():
    import base64

    assert pdf_pages_bound(base64.b64decode(pdf(7))) == 7
    # The page tree's count wins when page objects are hidden in compressed streams.
    assert pdf_pages_bound(b"%PDF-1.7 << /Type /Pages /Count 42 >> stream...") == 42
    # Nothing readable at all: as many pages as the size allows, at most the API's limit.
    assert pdf_pages_bound(b"x" * 4_000) == 100
    assert pdf_pages_bound(b"x" * 10_000_000) == PDF_MAX_PAGES


def test_a_document_the_gateway_cannot_read_is_held_at_the_largest_pdf():
    body = {
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}}
                ],
            }
        ],
    }
    assert estimate_request_input_tokens(body) == min(
        MAX_CONTEXT_TOKENS, PDF_MAX_PAGES * TOKENS_PER_PDF_PAGE
    )


def test_tools_add_their_definitions_and_the_tool_use_system_prompt():
    plain = {"max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    tool = CORPUS["tools"]["tools"][0]
    with_tools = {**plain, "tools": [tool]}
    import json

    added = estimate_request_input_tokens(with_tools) - estimate_request_input_tokens(plain)
    assert added >= 700 + len(json.dumps(tool)) / 4


def test_the_thinking_budget_is_held_when_it_passes_max_tokens():
    body = {"max_tokens": 1_000, "thinking": {"type": "enabled", "budget_tokens": 16_000}}
    assert output_tokens_bound(body) == 16_000
    assert output_tokens_bound({"max_tokens": 4_000}) == 4_000
    assert output_tokens_bound({"max_tokens": True}) == 0


def test_the_hold_is_the_dearest_input_plus_the_most_output():
    body = {"max_tokens": 2_000, "messages": [{"role": "user", "content": "x" * 1_000}]}
    tokens = estimate_request_input_tokens(body)
    assert hold_amount(HAIKU, body) == math.ceil((tokens * 20_000 + 2_000 * 50_000) / 1e6)


# --- the corpus, end to end ----------------------------------------------------------------------
@pytest.fixture
def client(standin):
    return anthropic.Anthropic(base_url=standin.url, api_key=fake_key(), max_retries=0)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", CORPUS)
def test_the_hold_covers_the_real_charge_and_the_charge_is_the_price_table(
    client, standin, model, name
):
    body = {**CORPUS[name], "model": model}
    price = get_price(model)
    hold = hold_amount(price, body)
    raw = client.messages.with_raw_response.create(**body).http_response.json()
    usage = _usage_from_json(raw["usage"])
    assert usage.input_tokens + usage.cache_creation_input_tokens > 0
    charge = cost(price, usage)
    assert charge == by_hand(price, usage)
    assert hold >= charge, f"{name}: hold {hold} < charge {charge}"
    # A repeat reads what the first wrote; it costs less and is still covered.
    again = _usage_from_json(
        client.messages.with_raw_response.create(**body).http_response.json()["usage"]
    )
    assert cost(price, again) <= charge and hold >= cost(price, again)
    # The streamed answer reports the same usage, so it is charged the same.
    standin.reset()
    with client.messages.stream(**body) as stream:
        streamed = _usage_from_json(stream.get_final_message().usage.model_dump())
    assert cost(price, streamed) == charge


def test_the_estimate_is_at_least_what_count_tokens_answers_for_every_request(client):
    for name, request_body in CORPUS.items():
        body = {**request_body, "model": "claude-sonnet-5"}
        counted = client.messages.count_tokens(
            **{
                k: v
                for k, v in body.items()
                if k not in ("max_tokens", "stop_sequences", "metadata")
            }
        ).input_tokens
        assert estimate_request_input_tokens(body) >= counted, name


def test_the_corpus_writes_the_cache_with_both_ttls(client):
    seen = {"5m": 0, "1h": 0}
    for request_body in CORPUS.values():
        body = {**request_body, "model": "claude-sonnet-5"}
        usage = _usage_from_json(
            client.messages.with_raw_response.create(**body).http_response.json()["usage"]
        )
        seen["5m"] += usage.cache_creation_5m_input_tokens
        seen["1h"] += usage.cache_creation_1h_input_tokens
    assert seen["5m"] > 0 and seen["1h"] > 0


def test_usage_above_the_hold_is_charged_above_it(client, standin):
    # What the gateway must record as a shortfall (§13): the stand-in can make it happen.
    body = {**CORPUS["short text"], "model": "claude-haiku-4-5"}
    price = get_price("claude-haiku-4-5")
    hold = hold_amount(price, body)
    standin.set_usage_override({"input_tokens": 2_000_000, "output_tokens": 64})
    usage = _usage_from_json(
        client.messages.with_raw_response.create(**body).http_response.json()["usage"]
    )
    assert cost(price, usage) > hold
