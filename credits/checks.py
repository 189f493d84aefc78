import datetime

from django.conf import settings
from django.core.checks import Error, register

PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "max_output_tokens")
LONG_CONTEXT_FIELDS = ("above_input_tokens", "input", "output", "cache_read", "cache_write")
OPTIONAL_PERCENT_FIELDS = ("fast_percent", "us_inference_percent")


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
        if isinstance(row, dict):
            problems += _optional_percents(row)
        for problem in problems:
            errors.append(
                Error(
                    f"AI_MODEL_PRICES['{model}']: {problem}.",
                    hint="Prices are integer credits per million tokens (1 credit = US$0.0001); "
                    "check AI_MODEL_PRICES_OVERRIDES.",
                    id="credits.E001",
                )
            )
    errors += _version_errors(settings.AI_MODEL_PRICE_VERSIONS)
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


def _optional_percents(row: dict) -> list[str]:
    problems = []
    for field in OPTIONAL_PERCENT_FIELDS:
        value = row.get(field)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 100
        ):
            problems.append(f"'{field}' must be a whole percentage of at least 100, not {value!r}")
    return problems


def _version_errors(versions) -> list[Error]:
    """Each price version takes effect at a distinct, time-zone-aware moment (decision 110)."""
    problems = []
    starts = []
    for number, version in enumerate(versions if isinstance(versions, list) else [None]):
        try:
            start = datetime.datetime.fromisoformat(version["effective_from"])
        except (TypeError, KeyError, ValueError):
            problems.append(f"version {number} has no ISO 8601 'effective_from'")
            continue
        if start.tzinfo is None:
            problems.append(f"version {number}'s 'effective_from' has no time zone")
        elif starts and start <= starts[-1]:
            problems.append(f"version {number} does not take effect after the one before it")
        else:
            starts.append(start)
        if not isinstance(version.get("prices"), dict):
            problems.append(f"version {number} has no 'prices' mapping")
    return [
        Error(
            f"AI_MODEL_PRICE_VERSIONS: {problem}.",
            hint="Append a new version for a price change; never edit one in force.",
            id="credits.E003",
        )
        for problem in problems
    ]
