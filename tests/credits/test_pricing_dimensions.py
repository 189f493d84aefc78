"""The arithmetic of every billable dimension (decision 113) and what the table cannot price
(decision 114). Rates are credits per million tokens; 1 credit = US$0.0001."""

import pytest

from credits.pricing import (
    RequestTerms,
    cost,
    get_price,
    hold_amount,
    max_cost,
    unpriced_features,
)
from providers.base import Usage

SONNET_5 = get_price("claude-sonnet-5")
OPUS_4_6 = get_price("claude-opus-4-6")
MILLION = Usage(input_tokens=1_000_000, output_tokens=1_000_000)


def test_web_search_costs_100_credits_a_search_and_web_fetch_only_its_tokens():
    assert cost(SONNET_5, Usage(web_search_requests=3)) == 300  # US$10 per 1,000 searches
    assert cost(SONNET_5, Usage(web_fetch_requests=5)) == 0
    # Tokens and searches are rounded together, once.
    assert cost(SONNET_5, Usage(input_tokens=1, web_search_requests=1)) == 101


def test_fast_mode_multiplies_every_token_rate_by_the_models_factor():
    standard = cost(OPUS_4_6, MILLION)
    assert standard == 50_000 + 250_000
    fast = Usage(input_tokens=1_000_000, output_tokens=1_000_000, speed="fast")
    assert cost(OPUS_4_6, fast) == 6 * standard  # $30 / $150 per MTok
    # The provider's report of how the request ran wins; where it says nothing, the request's.
    assert cost(OPUS_4_6, MILLION, RequestTerms(speed="fast")) == 6 * standard
    ran_standard = Usage(input_tokens=1_000_000, output_tokens=1_000_000, speed="standard")
    assert cost(OPUS_4_6, ran_standard, RequestTerms(speed="fast")) == standard


def test_fast_mode_applies_to_cache_rates_and_not_to_search_fees():
    usage = Usage(cache_read_input_tokens=1_000_000, web_search_requests=1, speed="fast")
    assert cost(OPUS_4_6, usage) == 6 * 5_000 + 100


def test_us_only_inference_costs_a_tenth_more_and_global_nothing():
    assert cost(SONNET_5, MILLION, RequestTerms(inference_geo="us")) == 198_000
    assert cost(SONNET_5, MILLION, RequestTerms(inference_geo="global")) == 180_000
    us_usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, inference_geo="us")
    assert cost(SONNET_5, us_usage) == 198_000
    # Fast and US-only together multiply.
    both = Usage(input_tokens=1_000_000, speed="fast", inference_geo="us")
    assert cost(OPUS_4_6, both) == 50_000 * 6 * 11 // 10


def test_multipliers_round_up_once():
    # 1 input token on Opus 4.6 fast + US: 0.05 x 6.6 = 0.33 credit -> 1.
    assert cost(OPUS_4_6, Usage(input_tokens=1), RequestTerms("fast", "us")) == 1


def test_sonnet_4_5_bills_the_whole_request_at_long_context_rates_above_200k():
    price = get_price("claude-sonnet-4-5")
    at_limit = Usage(input_tokens=200_000, output_tokens=1_000)
    above = Usage(input_tokens=200_001, output_tokens=1_000)
    assert cost(price, at_limit) == 6_000 + 150
    assert cost(price, above) == -(-(200_001 * 60_000 + 1_000 * 225_000) // 1_000_000)
    # Cache reads count toward the prompt's length.
    cached = Usage(input_tokens=1_000, cache_read_input_tokens=250_000)
    assert cost(price, cached) == -(-(1_000 * 60_000 + 250_000 * 6_000) // 1_000_000)


def test_cost_keeps_its_two_argument_form():
    assert cost(SONNET_5, Usage(input_tokens=1_000, output_tokens=1_000)) == 30 + 150


def test_max_cost_and_holds_cover_the_multipliers_and_searches():
    plain = max_cost(OPUS_4_6, input_tokens=1_000, max_tokens=1_000)
    fast = max_cost(OPUS_4_6, input_tokens=1_000, max_tokens=1_000, terms=RequestTerms("fast"))
    assert fast == 6 * plain
    body = {
        "model": "claude-sonnet-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    searching = {**body, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    limited = {**body, "tools": [{"type": "web_search_20250305", "name": "s", "max_uses": 2}]}
    base = hold_amount(SONNET_5, {**body, "tools": [{"name": "t", "input_schema": {}}]})
    assert hold_amount(SONNET_5, limited) >= base + 200
    assert hold_amount(SONNET_5, searching) >= hold_amount(SONNET_5, limited) + 800


def test_a_price_snapshot_holds_every_rate():
    snapshot = get_price("claude-sonnet-4-5").snapshot()
    assert snapshot["input"] == 30_000 and snapshot["web_search"] == 100
    assert snapshot["long_context"]["input"] == 60_000
    assert snapshot["long_context_above_input_tokens"] == 200_000
    assert snapshot["effective_from"]


BODY = {"model": "claude-sonnet-5", "max_tokens": 10, "messages": []}


@pytest.mark.parametrize(
    "extra,beta",
    [
        ({}, None),
        ({}, "interleaved-thinking-2025-05-14, fine-grained-tool-streaming-2025-05-14"),
        ({"tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}, None),
        ({"tools": [{"type": "web_search_20260209", "name": "web_search"}]}, None),
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, None),
        ({"service_tier": "standard_only", "speed": "standard"}, None),
        ({"thinking": {"type": "adaptive"}, "stream": True, "system": "x"}, None),
        ({"inference_geo": "us"}, "claude-code-20250219"),
    ],
)
def test_what_the_table_prices_passes(extra, beta):
    assert unpriced_features({**BODY, **extra}, beta, SONNET_5) == []


def test_what_the_table_cannot_price_is_named():
    body = {
        **BODY,
        "speed": "fast",
        "inference_geo": "eu",
        "service_tier": "priority",
        "container": "c1",
        "tools": [
            {"type": "code_execution_20250825", "name": "code_execution"},
            {"type": "tool_search_tool_regex_20251119", "name": "tool_search"},
        ],
    }
    assert unpriced_features(body, "files-api-2025-04-14,brand-new-2027", SONNET_5) == [
        "field 'container'",
        "speed 'fast'",
        "inference_geo 'eu'",
        "service_tier 'priority'",
        "tool type 'code_execution_20250825'",
        "tool type 'tool_search_tool_regex_20251119'",
        "anthropic-beta 'brand-new-2027'",
    ]
    # Fast mode is priced only where the model has it; US-only only from the 4.6 models on.
    assert unpriced_features({**BODY, "speed": "fast"}, None, OPUS_4_6) == []
    haiku = get_price("claude-haiku-4-5")
    assert unpriced_features({**BODY, "inference_geo": "us"}, None, haiku) == ["inference_geo 'us'"]


def test_a_key_pasted_as_a_beta_is_not_repeated():
    named = unpriced_features(BODY, "sk-ant-api03-abcdefghijklmnop", SONNET_5)
    assert named == ["anthropic-beta a value that looks like an API key (not repeated here)"]


def test_claude_codes_own_betas_are_priced():
    # The anthropic-beta header of a captured Claude Code v2.1 request.
    header = (
        "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,"
        "thinking-token-count-2026-05-13,context-management-2025-06-27,"
        "prompt-caching-scope-2026-01-05,mid-conversation-system-2026-04-07,"
        "advisor-tool-2026-03-01,effort-2025-11-24,extended-cache-ttl-2025-04-11,"
        "redact-thinking-2026-02-12,fine-grained-tool-streaming-2025-05-14"
    )
    assert unpriced_features(BODY, header, SONNET_5) == []
    # The tools those betas unlock are still checked one by one.
    advisor = {**BODY, "tools": [{"type": "advisor_20260301", "name": "advisor"}]}
    assert unpriced_features(advisor, header, SONNET_5) == ["tool type 'advisor_20260301'"]
