"""Prices of AI models in credits, and the arithmetic that turns tokens into credits.

Units: 1 credit = US$0.0001. Prices are integer credits per million tokens
(``settings.AI_MODEL_PRICES``); a request's cost is rounded up to a whole credit, so rounding
never undercharges. See docs/decisions/010-credit-units-and-price-table.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from providers.base import Usage

TOKENS_PER_PRICE_UNIT = 1_000_000

# Estimation constants for holds (see estimate_input_tokens).
BYTES_PER_TOKEN_ESTIMATE = 2
TOKENS_PER_MESSAGE_OVERHEAD = 8
TOKENS_PER_REQUEST_OVERHEAD = 32
# Anthropic resizes images to at most ~1.15 megapixels (~1,600 tokens at 750 px per token);
# twice that leaves room for newer tokenizers.
TOKENS_PER_IMAGE = 3_200


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
        )
    return ModelPrice(
        input=int(row["input"]),
        output=int(row["output"]),
        cache_read=int(row["cache_read"]),
        cache_write=int(row["cache_write"]),
        max_output_tokens=int(row["max_output_tokens"]),
        long_context_above_input_tokens=threshold,
        long_context=long_context,
    )


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
    """Return the credits a request used, rounded up to a whole credit."""
    prompt_tokens = (
        usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    )
    rates = price.for_prompt(prompt_tokens)
    return _credits(
        usage.input_tokens * rates.input
        + usage.output_tokens * rates.output
        + usage.cache_read_input_tokens * rates.cache_read
        + usage.cache_creation_input_tokens * rates.cache_write
    )


def max_cost(price: ModelPrice, *, input_tokens: int, max_tokens: int) -> int:
    """Return the most a request can cost: what the gateway holds before calling the provider."""
    if input_tokens < 0 or max_tokens < 0:
        raise ValueError("Token counts cannot be negative.")
    rates = price.for_prompt(input_tokens)
    # A prompt token may be billed as a cache write, which costs more than plain input.
    dearest_input = max(rates.input, rates.cache_write, rates.cache_read)
    return _credits(input_tokens * dearest_input + max_tokens * rates.output)


def _text_bytes(value: Any) -> tuple[int, int]:
    """Return (UTF-8 bytes of text, number of images) found anywhere in a content value."""
    if isinstance(value, str):
        return len(value.encode()), 0
    if isinstance(value, Mapping):
        if value.get("type") == "image":
            return 0, 1
        total_bytes = total_images = 0
        for item in value.values():
            more_bytes, more_images = _text_bytes(item)
            total_bytes += more_bytes
            total_images += more_images
        return total_bytes, total_images
    if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray):
        total_bytes = total_images = 0
        for item in value:
            more_bytes, more_images = _text_bytes(item)
            total_bytes += more_bytes
            total_images += more_images
        return total_bytes, total_images
    if value is None or isinstance(value, bool | int | float):
        return len(str(value)), 0
    return len(str(value).encode()), 0


def estimate_input_tokens(messages: Any, system: Any = None) -> int:
    """Estimate, on the high side, how many input tokens a request will be billed for.

    Every string in the request (message text, tool input, JSON keys, base64 document data)
    counts one token per two UTF-8 bytes: Claude's tokenizers average 3-4 characters of English
    per token, and one CJK character (3 bytes) is at most about a token and a half here. Each
    image counts a flat ``TOKENS_PER_IMAGE``. Messages and the request carry a small overhead.
    """
    text_bytes, images = _text_bytes(messages)
    system_bytes, system_images = _text_bytes(system) if system else (0, 0)
    message_count = len(messages) if isinstance(messages, list | tuple) else 1
    return (
        math.ceil((text_bytes + system_bytes) / BYTES_PER_TOKEN_ESTIMATE)
        + (images + system_images) * TOKENS_PER_IMAGE
        + message_count * TOKENS_PER_MESSAGE_OVERHEAD
        + TOKENS_PER_REQUEST_OVERHEAD
    )
