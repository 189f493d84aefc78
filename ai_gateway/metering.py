"""How much a credit-paid request reserves, when it extends, and what it is charged when the
provider's usage cannot be trusted (docs/decisions/100-103).

The arithmetic stays in ``credits.pricing`` (``cost``, ``max_cost``, the input estimate);
this module only decides which amounts to ask the ledger for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from credits import pricing
from providers import Usage

# A count above this is not a real usage report (the largest context window is 1M tokens;
# the largest max_tokens 128k): the usage is garbled and charged conservatively.
MAX_TOKENS_IN_USAGE = 10_000_000
NO_INPUT = "no input tokens reported"
USAGE_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
)


def worst_case(price: pricing.ModelPrice, body: Mapping[str, Any], *, input_tokens: int) -> int:
    """The most the request can cost: its input estimate (``input_tokens``) at the dearest
    input rate and every output token it may produce."""
    return pricing.hold_amount(price, body, input_tokens=input_tokens)


def first_reservation(
    price: pricing.ModelPrice,
    body: Mapping[str, Any],
    *,
    stream: bool,
    worst: int,
    input_tokens: int,
) -> int:
    """What a request reserves before it is sent, given its ``worst_case`` and its input
    estimate (each walk of a large body is not free: they are worked out once).

    A stream reserves its start: its input at the dearest rate it can be billed at, plus a
    first output allowance (``AI_FIRST_OUTPUT_TOKENS``), and extends as output arrives. A
    plain request cannot be extended while the provider works, so it reserves its worst
    case (decision 102).
    """
    if not stream:
        return worst
    allowance = min(pricing.output_tokens_bound(body), settings.AI_FIRST_OUTPUT_TOKENS)
    start = pricing.max_cost(
        price,
        input_tokens=input_tokens,
        max_tokens=allowance,
        terms=pricing.RequestTerms.from_body(body),
    )
    return min(worst, max(1, start))


def extension(*, held: int, produced: int, worst: int, first: int) -> int:
    """Credits to add to a stream's reservation now (0: none needed).

    Extend once what was produced passes three quarters of what is held, by as much as is
    held already (at least the first reservation, and at least what was produced beyond the
    hold), so a stream of any length extends a logarithmic number of times; never past the
    worst case. Server-tool results (web search pages, fetched documents) arrive as input the
    request's own estimate could not see, so what was produced can pass that worst case: the
    reservation then follows what was produced, one first reservation beyond it.
    """
    if produced * 4 < held * 3:
        return 0
    ceiling = worst if produced <= worst else produced + first
    if held >= ceiling:
        return 0
    return min(max(held, first, produced - held + first), ceiling - held)


def output_before_next_look(*, held: int, produced: int, refused: bool, per_token: float) -> int:
    """How many more output tokens a stream may produce before its reservation needs looking
    at again (at least 1): until what it produced reaches three quarters of what is held (when
    ``extension`` extends), or, once the balance refused more (or the reservation is at its
    ceiling), all of it (when the stream is cut). ``per_token``: what one more output token
    costs at most. Pricing every chunk instead costs more CPU than relaying it."""
    if per_token <= 0:
        return MAX_TOKENS_IN_USAGE
    at_three_quarters = -(-held * 3 // 4)
    target = held if refused or produced >= at_three_quarters else at_three_quarters
    # ``cost`` rounds up to a whole credit: one credit of slack keeps the look early.
    return max(1, int((target - produced - 1) / per_token))


def usage_problem(usage: Usage) -> str | None:
    """Say what makes a provider's usage unusable for billing, or None when it is usable.

    The provider adapter may say so itself (``Usage.problem``); the gateway checks the counts
    too: whole numbers, not negative, within bounds, and some input (the API bills every
    request for at least one input token, so all-zero input means the usage was missing).
    """
    problem = getattr(usage, "problem", None)
    if problem:
        return str(problem)
    for name in USAGE_COUNTS:
        value = getattr(usage, name, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} is not a whole number"
        if value < 0 or value > MAX_TOKENS_IN_USAGE:
            return f"{name} is out of bounds ({value})"
    if not (
        usage.input_tokens or usage.cache_read_input_tokens or usage.cache_creation_input_tokens
    ):
        return NO_INPUT
    return None


def usable_counts(usage: Usage) -> Usage:
    """The usage to store on the row: each count kept when it is a sane whole number, else 0."""
    values = {}
    for name in USAGE_COUNTS:
        value = getattr(usage, name, 0)
        ok = isinstance(value, int) and not isinstance(value, bool)
        values[name] = value if ok and 0 <= value <= MAX_TOKENS_IN_USAGE else 0
    return dataclasses.replace(usage, **values)


def hidden_work(body: Mapping[str, Any]) -> bool:
    """Whether the provider may bill work the stream does not show as it goes: thinking with
    ``display: "omitted"``, server tools (web search, web fetch, code execution) or MCP
    servers, whose tokens appear only in the final usage."""
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("display") == "omitted":
        return True
    if body.get("mcp_servers"):
        return True
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            kind = tool.get("type") if isinstance(tool, Mapping) else None
            if kind not in (None, "custom"):
                return True
    return False
