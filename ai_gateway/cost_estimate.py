"""What BYOK usage would cost at the providers' list prices, in US dollars: an estimate.

The list prices are the credits price table (``settings.AI_MODEL_PRICES``) read back in
dollars: 1 credit = US$0.0001, so a price of N credits per million tokens is N / 10,000
dollars per million tokens (docs/decisions/010 and 075). Unlike a credits charge, nothing is
rounded per request: the estimate is the exact list price of the tokens, shown to the cent.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from credits.pricing import TOKENS_PER_PRICE_UNIT, ModelPrice, get_price

USD_PER_CREDIT = Decimal("0.0001")
# The day the price table was last read from the providers' pricing pages (decisions 010 and
# 148). Move it with every change of AI_MODEL_PRICES.
LIST_PRICES_AS_OF = datetime.date(2026, 12, 4)


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """Tokens of one model, all billed at the same rates (short or long prompts)."""

    model: str
    long_context: bool
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int


@dataclass(frozen=True, slots=True)
class ModelCost:
    model: str
    usd: Decimal | None  # None: the model has no list price in the table


@dataclass(slots=True)
class CostEstimate:
    """The estimated provider cost of a set of requests, per model and in total."""

    total_usd: Decimal = Decimal(0)
    by_model: dict[str, ModelCost] = field(default_factory=dict)
    unpriced_models: list[str] = field(default_factory=list)
    prices_as_of: datetime.date = LIST_PRICES_AS_OF


def _usd(counts: TokenCounts, price: ModelPrice) -> Decimal:
    rates = price.long_context if counts.long_context and price.long_context else price
    credits_per_million = (
        counts.input_tokens * rates.input
        + counts.output_tokens * rates.output
        + counts.cache_read_input_tokens * rates.cache_read
        + counts.cache_creation_input_tokens * rates.cache_write
    )
    return Decimal(credits_per_million) / TOKENS_PER_PRICE_UNIT * USD_PER_CREDIT


def cost_estimate(*, counts: Iterable[TokenCounts]) -> CostEstimate:
    """Return the list-price cost of these tokens; models without a price are named, not guessed."""
    estimate = CostEstimate()
    per_model: dict[str, Decimal | None] = {}
    for row in counts:
        price = get_price(row.model)
        if price is None:
            per_model[row.model] = None
            continue
        usd = _usd(row, price)
        per_model[row.model] = (per_model.get(row.model) or Decimal(0)) + usd
        estimate.total_usd += usd
    estimate.by_model = {model: ModelCost(model, usd) for model, usd in per_model.items()}
    estimate.unpriced_models = sorted(m for m, usd in per_model.items() if usd is None)
    return estimate


def long_context_thresholds() -> dict[int, list[str]]:
    """Return, per prompt length above which long-context rates apply, the models it holds for."""
    from django.conf import settings

    thresholds: dict[int, list[str]] = {}
    for model in settings.AI_MODEL_PRICES:
        price = get_price(model)
        if price is not None and price.long_context_above_input_tokens is not None:
            thresholds.setdefault(price.long_context_above_input_tokens, []).append(model)
    return thresholds


def format_usd(amount: Decimal) -> str:
    """US$ to the cent; below a cent, to a hundredth of a cent so small usage is not shown as 0."""
    if amount == 0:
        return "US$0.00"
    if amount < Decimal("0.01"):
        return f"US${amount.quantize(Decimal('0.0001')):,}"
    return f"US${amount.quantize(Decimal('0.01')):,}"
