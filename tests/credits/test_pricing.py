import json
import typing

import pytest
from anthropic._data import DEPRECATED_MODELS
from anthropic.types.model_param import ModelParam

from credits.pricing import ModelPrice, cost, estimate_request_input_tokens, get_price, max_cost
from providers.base import Usage
from tests.anthropic_standin import MODELS as STANDIN_MODELS


def sdk_models() -> set[str]:
    literal = next(arg for arg in typing.get_args(ModelParam) if typing.get_origin(arg))
    return set(typing.get_args(literal))


def test_every_current_sdk_model_and_every_standin_model_has_a_price():
    current = sdk_models() - set(DEPRECATED_MODELS)
    assert "claude-haiku-4-5" in current  # the lookup above really read the SDK's list
    wanted = current | {m["id"] for m in STANDIN_MODELS}
    missing = sorted(m for m in wanted if get_price(m) is None)
    assert missing == []


def test_every_price_is_a_positive_integer_and_output_dearer_than_input(settings):
    # Anthropic's models; OpenAI's and Gemini's rows (no cache-write price, embeddings with
    # no output) are charged as their providers bill in test_provider_apis_served.py.
    claude = [model for model in settings.AI_MODEL_PRICES if model.startswith("claude-")]
    assert claude
    for model in claude:
        price = get_price(model)
        for value in (price.input, price.output, price.cache_read, price.cache_write):
            assert isinstance(value, int) and value > 0, model
        assert price.output > price.input > price.cache_read, model
        assert price.cache_write > price.input, model
        assert price.max_output_tokens >= 32_000, model


def test_an_unknown_model_has_no_price():
    assert get_price("claude-unknown-9") is None
    assert get_price("") is None


def test_known_prices_in_credits_per_million_tokens():
    # 1 credit = $0.0001: Haiku 4.5 at $1 / $5 per MTok.
    assert get_price("claude-haiku-4-5") == ModelPrice(
        input=10_000, output=50_000, cache_read=1_000, cache_write=12_500, max_output_tokens=64_000
    )
    assert get_price("claude-sonnet-4-5").output == 150_000
    assert get_price("claude-opus-4-1").input == 150_000


def test_price_table_overrides_come_from_settings(settings):
    settings.AI_MODEL_PRICES = {
        "my-model": dict(input=1, output=2, cache_read=1, cache_write=2, max_output_tokens=10)
    }
    assert get_price("my-model") == ModelPrice(1, 2, 1, 2, 10)
    assert get_price("claude-haiku-4-5") is None


HAIKU = ModelPrice(
    input=10_000, output=50_000, cache_read=1_000, cache_write=12_500, max_output_tokens=64_000
)


def test_cost_of_a_million_tokens_each_is_the_sum_of_the_prices():
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_read_input_tokens=1_000_000,
        cache_creation_input_tokens=1_000_000,
    )
    assert cost(HAIKU, usage) == 10_000 + 50_000 + 1_000 + 12_500


def test_cost_rounds_up_to_a_whole_credit_and_never_down():
    assert cost(HAIKU, Usage()) == 0
    # 1 input token = 0.01 credit: charged 1.
    assert cost(HAIKU, Usage(input_tokens=1)) == 1
    # 100 input tokens = exactly 1 credit; 101 = 1.01 credits -> 2.
    assert cost(HAIKU, Usage(input_tokens=100)) == 1
    assert cost(HAIKU, Usage(input_tokens=101)) == 2
    # 1,234 in + 567 out = 12.34 + 28.35 = 40.69 -> 41.
    assert cost(HAIKU, Usage(input_tokens=1_234, output_tokens=567)) == 41


def test_cost_counts_cache_reads_and_writes_at_their_own_prices():
    usage = Usage(input_tokens=0, cache_read_input_tokens=10_000, cache_creation_input_tokens=8_000)
    # 10,000 * 1,000 / 1e6 = 10; 8,000 * 12,500 / 1e6 = 100.
    assert cost(HAIKU, usage) == 110


def test_long_context_rates_apply_above_the_threshold():
    price = get_price("claude-haiku-5-5")
    short = Usage(input_tokens=100_000, output_tokens=1_000)
    long = Usage(input_tokens=100_001, output_tokens=1_000)
    assert cost(price, short) == 100 + 5  # $0.10 / $0.50 per MTok
    assert cost(price, long) == -(-(100_001 * 5_000 + 1_000 * 25_000) // 1_000_000)
    # Cached prompt tokens count towards the threshold.
    cached = Usage(input_tokens=10, cache_read_input_tokens=100_000)
    assert cost(price, cached) == -(-(10 * 5_000 + 100_000 * 500) // 1_000_000)


def test_max_cost_covers_the_dearest_way_the_prompt_can_be_billed():
    # A prompt token may be written to the cache for an hour, at twice the input price.
    assert max_cost(HAIKU, input_tokens=1_000, max_tokens=2_000) == 20 + 100
    worst = Usage(
        cache_creation_input_tokens=1_000, cache_creation_1h_input_tokens=1_000, output_tokens=2_000
    )
    assert max_cost(HAIKU, input_tokens=1_000, max_tokens=2_000) >= cost(HAIKU, worst)
    assert max_cost(HAIKU, input_tokens=0, max_tokens=1) == 1


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-opus-4-1", "claude-haiku-5-5"])
@pytest.mark.parametrize(
    "usage",
    [
        Usage(input_tokens=900, output_tokens=4_000),
        Usage(input_tokens=1, cache_read_input_tokens=899, output_tokens=1),
        Usage(input_tokens=400, cache_creation_input_tokens=500, output_tokens=3_999),
    ],
)
def test_max_cost_is_never_below_any_usage_within_the_limits(model, usage):
    price = get_price(model)
    assert max_cost(price, input_tokens=900, max_tokens=4_000) >= cost(price, usage)


def test_max_cost_refuses_negative_counts():
    with pytest.raises(ValueError):
        max_cost(HAIKU, input_tokens=-1, max_tokens=10)


def estimate_input_tokens(messages, system):
    return estimate_request_input_tokens({"messages": messages, "system": system})


def test_input_estimate_is_above_typical_token_counts():
    english = "The quick brown fox jumps over the lazy dog. " * 200  # ~9,000 chars, ~2,000 tokens
    estimate = estimate_input_tokens([{"role": "user", "content": english}], None)
    assert estimate >= len(english) / 3
    with_system = estimate_input_tokens([{"role": "user", "content": english}], "Be brief. " * 100)
    assert with_system >= estimate + 1_000 / 3


def test_input_estimate_counts_cjk_text_per_byte():
    text = "日本語のテキスト" * 100  # 800 characters, 2,400 UTF-8 bytes
    assert estimate_input_tokens([{"role": "user", "content": text}], None) >= 1_200


def test_input_estimate_counts_content_blocks_and_images():
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": "A" * 4_000_000,
                    },
                },
            ],
        },
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": [{"type": "text", "text": "And its colour?"}]},
    ]
    estimate = estimate_input_tokens(messages, [{"type": "text", "text": "You see images."}])
    # The per-image cap (its size is unreadable), not one token per two base64 bytes.
    assert 5_000 <= estimate < 5_800


def test_input_estimate_is_at_least_what_the_standin_reports():
    messages = [{"role": "user", "content": "Hello there, how are you today? " * 50}]
    # The stand-in bills len(json.dumps(messages)) // 4 tokens.
    assert estimate_input_tokens(messages, None) >= len(json.dumps(messages)) // 4
