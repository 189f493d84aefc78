from credits.checks import check_price_table


def test_the_shipped_price_table_passes_the_check():
    assert check_price_table() == []


def test_a_bad_price_row_is_reported_with_its_model(settings):
    settings.AI_MODEL_PRICES = {
        "good": dict(input=1, output=2, cache_read=1, cache_write=2, max_output_tokens=10),
        "bad": dict(input=1.5, output=2, cache_read=0, cache_write=2, max_output_tokens=10),
    }
    messages = [e.msg for e in check_price_table()]
    assert messages == [
        "AI_MODEL_PRICES['bad']: 'input' must be a positive whole number, not 1.5.",
        "AI_MODEL_PRICES['bad']: 'cache_read' must be a positive whole number, not 0.",
    ]
    assert {e.id for e in check_price_table()} == {"credits.E001"}


def test_a_negative_allowance_is_reported(settings):
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = -1
    assert [e.id for e in check_price_table()] == ["credits.E002"]


def test_price_versions_must_take_effect_in_order_with_a_time_zone(settings):
    table = {"m": dict(input=1, output=2, cache_read=1, cache_write=2, max_output_tokens=10)}
    settings.AI_MODEL_PRICE_VERSIONS = [
        {"effective_from": "2026-11-01T00:00:00+00:00", "prices": table},
        {"effective_from": "2026-10-01T00:00:00+00:00", "prices": table},
        {"effective_from": "2027-01-01T00:00:00", "prices": table},
        {"effective_from": "soon", "prices": table},
    ]
    assert [e.msg for e in check_price_table()] == [
        "AI_MODEL_PRICE_VERSIONS: version 1 does not take effect after the one before it.",
        "AI_MODEL_PRICE_VERSIONS: version 2's 'effective_from' has no time zone.",
        "AI_MODEL_PRICE_VERSIONS: version 3 has no ISO 8601 'effective_from'.",
    ]


def test_a_multiplier_below_100_percent_is_reported(settings):
    settings.AI_MODEL_PRICES = {
        "m": dict(
            input=1, output=2, cache_read=1, cache_write=2, max_output_tokens=10, fast_percent=6
        )
    }
    assert [e.msg for e in check_price_table()] == [
        "AI_MODEL_PRICES['m']: 'fast_percent' must be a whole percentage of at least 100, not 6."
    ]
