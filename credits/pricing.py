"""Prices of AI models in credits, and the arithmetic that turns tokens into credits.

Units: 1 credit = US$0.0001. Prices are integer credits per million tokens
(``settings.AI_MODEL_PRICES``); a request's cost is rounded up to a whole credit, so rounding
never undercharges. See docs/decisions/010-credit-units-and-price-table.md.

Before a platform-paid request the gateway holds ``hold_amount(price, body)``: the most the
request can cost whatever its content (text, tools, images, documents, thinking, cache
writes at the 1-hour price), from a conservative estimate of its input tokens. See
docs/decisions/083-holds-cover-every-kind-of-content.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

# Token estimation lives with the provider adapter (decision 112); re-exported here for the
# callers that knew it as part of pricing.
from providers.anthropic_estimate import (  # noqa: F401
    MAX_CONTEXT_TOKENS,
    PDF_MAX_PAGES,
    TOKENS_FOR_TOOL_USE,
    TOKENS_PER_IMAGE,
    TOKENS_PER_PDF_PAGE,
    estimate_input_tokens,
    estimate_request_input_tokens,
    image_dimensions,
    image_tokens_bound,
    output_tokens_bound,
    pdf_pages_bound,
)
from providers.base import Usage

TOKENS_PER_PRICE_UNIT = 1_000_000


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Credits per million tokens of one model, and its largest ``max_tokens``."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    max_output_tokens: int
    # Some models bill every token of a request at a higher rate once the prompt is long.
    long_context_above_input_tokens: int | None = None
    long_context: ModelPrice | None = None
    # The 1-hour cache write; Anthropic's price is 2 x input (the 5-minute one is 1.25 x).
    cache_write_1h: int | None = None

    def __post_init__(self) -> None:
        if self.cache_write_1h is None:
            object.__setattr__(self, "cache_write_1h", 2 * self.input)

    def for_prompt(self, prompt_tokens: int) -> ModelPrice:
        """Return the rates that apply to a prompt of this many tokens."""
        if (
            self.long_context is not None
            and self.long_context_above_input_tokens is not None
            and prompt_tokens > self.long_context_above_input_tokens
        ):
            return self.long_context
        return self


def _price_from_row(row: Mapping[str, Any]) -> ModelPrice:
    long_row = row.get("long_context")
    long_context = None
    threshold = None
    if long_row:
        threshold = int(long_row["above_input_tokens"])
        long_context = ModelPrice(
            input=int(long_row["input"]),
            output=int(long_row["output"]),
            cache_read=int(long_row["cache_read"]),
            cache_write=int(long_row["cache_write"]),
            max_output_tokens=int(row["max_output_tokens"]),
            cache_write_1h=_optional_int(long_row.get("cache_write_1h")),
        )
    return ModelPrice(
        input=int(row["input"]),
        output=int(row["output"]),
        cache_read=int(row["cache_read"]),
        cache_write=int(row["cache_write"]),
        max_output_tokens=int(row["max_output_tokens"]),
        long_context_above_input_tokens=threshold,
        long_context=long_context,
        cache_write_1h=_optional_int(row.get("cache_write_1h")),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def get_price(model: str) -> ModelPrice | None:
    """Return the price of a model, or None when the model is not sold for credits."""
    row = settings.AI_MODEL_PRICES.get(model)
    if row is None:
        return None
    return _price_from_row(row)


def _credits(micro_credits: int) -> int:
    # Ceiling division on integers: exact, and never rounds a charge down.
    return -(-micro_credits // TOKENS_PER_PRICE_UNIT)


def cost(price: ModelPrice, usage: Usage) -> int:
    """Return the credits a request used, rounded up to a whole credit.

    Cache writes are charged by TTL: the 5-minute and 1-hour parts at their own prices; a
    write the provider did not split (an older answer) at the 5-minute price, the default TTL.
    """
    split = usage.cache_creation_5m_input_tokens + usage.cache_creation_1h_input_tokens
    unsplit = max(0, usage.cache_creation_input_tokens - split)
    prompt_tokens = usage.input_tokens + usage.cache_read_input_tokens + split + unsplit
    rates = price.for_prompt(prompt_tokens)
    return _credits(
        usage.input_tokens * rates.input
        + usage.output_tokens * rates.output
        + usage.cache_read_input_tokens * rates.cache_read
        + (usage.cache_creation_5m_input_tokens + unsplit) * rates.cache_write
        + usage.cache_creation_1h_input_tokens * rates.cache_write_1h
    )


def max_cost(price: ModelPrice, *, input_tokens: int, max_tokens: int) -> int:
    """Return the most a request can cost: what the gateway holds before calling the provider."""
    if input_tokens < 0 or max_tokens < 0:
        raise ValueError("Token counts cannot be negative.")
    rates = price.for_prompt(input_tokens)
    # A prompt token may be billed as a cache write, which costs more than plain input; the
    # 1-hour write is the dearest way.
    dearest_input = max(rates.input, rates.cache_write, rates.cache_write_1h, rates.cache_read)
    return _credits(input_tokens * dearest_input + max_tokens * rates.output)


def hold_amount(price: ModelPrice, body: Mapping[str, Any]) -> int:
    """Return the credits to hold before sending this Messages request: the most it can cost."""
    return max_cost(
        price,
        input_tokens=estimate_request_input_tokens(body),
        max_tokens=output_tokens_bound(body),
    )
