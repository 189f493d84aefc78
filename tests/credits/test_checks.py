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
