from django.conf import settings
from django.core.checks import Error, register

PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "max_output_tokens")
LONG_CONTEXT_FIELDS = ("above_input_tokens", "input", "output", "cache_read", "cache_write")


def _positive_ints(row, fields) -> list[str]:
    if not isinstance(row, dict):
        return ["is not a mapping"]
    problems = []
    for field in fields:
        value = row.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            problems.append(f"'{field}' must be a positive whole number, not {value!r}")
    return problems


@register()
def check_price_table(app_configs=None, **kwargs):
    """Every row of AI_MODEL_PRICES must be whole, positive credits per million tokens."""
    errors = []
    prices = settings.AI_MODEL_PRICES
    if not isinstance(prices, dict):
        return [
            Error(
                "AI_MODEL_PRICES must map model ids to price rows.",
                hint="See docs/decisions/010-credit-units-and-price-table.md.",
                id="credits.E001",
            )
        ]
    for model, row in prices.items():
        problems = _positive_ints(row, PRICE_FIELDS)
        if isinstance(row, dict) and row.get("long_context") is not None:
            problems += [
                f"long_context {p}"
                for p in _positive_ints(row["long_context"], LONG_CONTEXT_FIELDS)
            ]
        for problem in problems:
            errors.append(
                Error(
                    f"AI_MODEL_PRICES['{model}']: {problem}.",
                    hint="Prices are integer credits per million tokens (1 credit = US$0.0001); "
                    "check AI_MODEL_PRICES_OVERRIDES.",
                    id="credits.E001",
                )
            )
    if not isinstance(settings.AI_CREDITS_MONTHLY_ALLOWANCE, int) or (
        settings.AI_CREDITS_MONTHLY_ALLOWANCE < 0
    ):
        errors.append(
            Error(
                "AI_CREDITS_MONTHLY_ALLOWANCE must be a whole number of credits, 0 or more.",
                hint="Set it to 0 to grant no monthly allowance.",
                id="credits.E002",
            )
        )
    return errors
