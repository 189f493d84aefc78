"""How a stream's reservation grows: the arithmetic of ``ai_gateway.metering.extension``."""

from ai_gateway.metering import extension


def test_no_extension_while_most_of_the_hold_is_unused():
    assert extension(held=1_000, produced=700, worst=10_000, first=1_000) == 0


def test_the_hold_doubles_once_three_quarters_are_used():
    assert extension(held=1_000, produced=750, worst=10_000, first=1_000) == 1_000


def test_never_past_the_worst_case_while_usage_stays_within_it():
    assert extension(held=9_000, produced=8_000, worst=10_000, first=1_000) == 1_000
    assert extension(held=10_000, produced=9_999, worst=10_000, first=1_000) == 0


def test_a_jump_in_usage_is_covered_in_one_step():
    # A message_start that reports a large prompt at once: one extension covers it.
    step = extension(held=1_000, produced=5_000, worst=10_000, first=1_000)
    assert 1_000 + step >= 5_000


def test_server_tool_input_beyond_the_worst_case_is_followed():
    # Web search results are input the request's estimate could not see: what was produced
    # passed the worst case, and the reservation still covers it, one first step beyond.
    step = extension(held=10_000, produced=12_000, worst=10_000, first=1_000)
    assert 10_000 + step == 13_000
