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

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    estimate_request_input_tokens,
    image_dimensions,
    image_tokens_bound,
    output_tokens_bound,
    pdf_pages_bound,
)
from providers.base import Usage
from workspaces.echo import shown

TOKENS_PER_PRICE_UNIT = 1_000_000
PERCENT = 100
# Credits held for the web searches of a web_search tool that sets no max_uses (decision 113).
WEB_SEARCHES_HELD_WITHOUT_MAX_USES = 10


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Credits per million tokens of one model, its largest ``max_tokens``, and what it bills
    besides tokens; ``effective_from`` is when the price version it comes from took effect."""

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
    # Server tools: credits per use (web search US$10 per 1,000 = 100 credits each).
    web_search: int = 100
    web_fetch: int = 0
    # Fast mode and US-only inference as a percentage of the standard rates; None: not sold
    # for credits on this model (refused before the provider is called).
    fast_percent: int | None = None
    us_inference_percent: int | None = None
    # Not part of equality: two versions with the same rates price alike.
    effective_from: str | None = field(default=None, compare=False)

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

    def snapshot(self) -> dict[str, Any]:
        """The price as stored with a usage row: every rate it was charged at."""
        values = {
            name: getattr(self, name)
            for name in self.__slots__
            if name not in ("long_context", "max_output_tokens")
        }
        if self.long_context is not None:
            long = self.long_context
            values["long_context"] = {
                name: getattr(long, name)
                for name in ("input", "output", "cache_read", "cache_write", "cache_write_1h")
            }
        return values


@dataclass(frozen=True, slots=True)
class RequestTerms:
    """What a request asks for that changes its rates (its body's ``speed``,
    ``inference_geo`` and ``service_tier``); the usage the provider reports wins where given."""

    speed: str = "standard"
    inference_geo: str = "global"
    service_tier: str = "auto"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> RequestTerms:
        def text(name: str, default: str) -> str:
            value = body.get(name)
            return value if isinstance(value, str) else default

        return cls(
            speed=text("speed", "standard"),
            inference_geo=text("inference_geo", "global"),
            service_tier=text("service_tier", "auto"),
        )


STANDARD_TERMS = RequestTerms()


def _price_from_row(row: Mapping[str, Any], effective_from: str | None = None) -> ModelPrice:
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
        web_search=int(row.get("web_search", 100)),
        web_fetch=int(row.get("web_fetch", 0)),
        fast_percent=_optional_int(row.get("fast_percent")),
        us_inference_percent=_optional_int(row.get("us_inference_percent")),
        effective_from=effective_from,
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def price_table_at(at: datetime.datetime | None = None) -> tuple[str, Mapping[str, Any]]:
    """Return the price version in force at ``at`` (now when None): when it took effect, and
    its rows. The newest version is ``settings.AI_MODEL_PRICES`` (with its overrides)."""
    versions = sorted(
        (datetime.datetime.fromisoformat(v["effective_from"]), v)
        for v in settings.AI_MODEL_PRICE_VERSIONS
    )
    newest_from, newest = versions[-1]
    if at is None or at >= newest_from:
        return newest["effective_from"], settings.AI_MODEL_PRICES
    # Before the first version nothing was sold: the first one is the nearest truth.
    in_force = next((v for start, v in reversed(versions) if start <= at), versions[0][1])
    return in_force["effective_from"], in_force["prices"]


def get_price(model: str, *, at: datetime.datetime | None = None) -> ModelPrice | None:
    """Return the price of a model in force at ``at`` (now when None), or None when the model
    is not sold for credits."""
    effective_from, table = price_table_at(at)
    row = table.get(model)
    if row is None:
        return None
    return _price_from_row(row, effective_from)


def _multiplier_percents(price: ModelPrice, *, speed: str | None, geo: str | None) -> int:
    """The product of the fast-mode and US-inference percentages that apply (100 x 100 when
    neither does)."""
    fast = (price.fast_percent or PERCENT) if speed == "fast" else PERCENT
    us_only = (price.us_inference_percent or PERCENT) if geo not in (None, "global") else PERCENT
    return fast * us_only


def _credits(micro_credits: int, percents: int = PERCENT * PERCENT) -> int:
    # Ceiling division on integers: exact, and never rounds a charge down.
    return -(-micro_credits * percents // (TOKENS_PER_PRICE_UNIT * PERCENT * PERCENT))


def cost(price: ModelPrice, usage: Usage, terms: RequestTerms = STANDARD_TERMS) -> int:
    """Return the credits a request used, rounded up to a whole credit (decision 113).

    Tokens at the rates of the prompt's length (long-context tiers); cache writes by TTL: the
    5-minute and 1-hour parts at their own prices, a write the provider did not split (an
    older answer) at the 5-minute price, the default TTL. Fast mode and US-only inference
    multiply every token rate; the speed and geography are the provider's report of how the
    request ran, or, where it says nothing, what the request asked for. Server tools are
    charged per use on top.
    """
    split = usage.cache_creation_5m_input_tokens + usage.cache_creation_1h_input_tokens
    unsplit = max(0, usage.cache_creation_input_tokens - split)
    prompt_tokens = usage.input_tokens + usage.cache_read_input_tokens + split + unsplit
    rates = price.for_prompt(prompt_tokens)
    tokens = (
        usage.input_tokens * rates.input
        + usage.output_tokens * rates.output
        + usage.cache_read_input_tokens * rates.cache_read
        + (usage.cache_creation_5m_input_tokens + unsplit) * rates.cache_write
        + usage.cache_creation_1h_input_tokens * rates.cache_write_1h
    )
    percents = _multiplier_percents(
        price,
        speed=usage.speed or terms.speed,
        geo=usage.inference_geo or terms.inference_geo,
    )
    fees = usage.web_search_requests * price.web_search + usage.web_fetch_requests * price.web_fetch
    return _credits(tokens * percents + fees * TOKENS_PER_PRICE_UNIT * PERCENT * PERCENT, 1)


def max_cost(
    price: ModelPrice,
    *,
    input_tokens: int,
    max_tokens: int,
    terms: RequestTerms = STANDARD_TERMS,
    web_searches: int = 0,
) -> int:
    """Return the most a request can cost: what the gateway holds before calling the provider."""
    if input_tokens < 0 or max_tokens < 0 or web_searches < 0:
        raise ValueError("Token counts cannot be negative.")
    rates = price.for_prompt(input_tokens)
    # A prompt token may be billed as a cache write, which costs more than plain input; the
    # 1-hour write is the dearest way.
    dearest_input = max(rates.input, rates.cache_write, rates.cache_write_1h, rates.cache_read)
    tokens = input_tokens * dearest_input + max_tokens * rates.output
    percents = _multiplier_percents(price, speed=terms.speed, geo=terms.inference_geo)
    fees = web_searches * price.web_search
    return _credits(tokens * percents + fees * TOKENS_PER_PRICE_UNIT * PERCENT * PERCENT, 1)


def _web_searches_bound(body: Mapping[str, Any]) -> int:
    searches = 0
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, Mapping) and str(tool.get("type") or "").startswith("web_search_"):
            uses = tool.get("max_uses")
            valid = isinstance(uses, int) and not isinstance(uses, bool) and uses >= 0
            searches += uses if valid else WEB_SEARCHES_HELD_WITHOUT_MAX_USES
    return searches


def hold_amount(
    price: ModelPrice, body: Mapping[str, Any], *, input_tokens: int | None = None
) -> int:
    """Return the credits to hold before sending this Messages request: the most it can cost.
    ``input_tokens``: the body's estimate (``estimate_request_input_tokens``), when the caller
    has it already."""
    if input_tokens is None:
        input_tokens = estimate_request_input_tokens(body)
    return max_cost(
        price,
        input_tokens=input_tokens,
        max_tokens=output_tokens_bound(body),
        terms=RequestTerms.from_body(body),
        web_searches=_web_searches_bound(body),
    )


# --- What the table can price (decision 114) -------------------------------------------------
# The request fields whose cost is only tokens, or whose cost the table covers (speed,
# inference_geo, service_tier by value, below). Any other field may bill something the table
# does not know (code execution's `container`, `user_profile_id`, ...): refused on credits.
PRICED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stream",
        "metadata",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "cache_control",
        "output_config",
        "context_management",
        "mcp_servers",
        "speed",
        "inference_geo",
        "service_tier",
    }
)
# Priority Tier capacity is bought ahead by the platform's account; "auto" and
# "standard_only" are both charged at the standard rates (about-claude/pricing).
PRICED_SERVICE_TIERS = frozenset({"auto", "standard_only"})
# Tools the client runs itself (billed as tokens only), and server tools the table prices:
# web search per search, web fetch as its tokens (about-claude/pricing, "Tool use pricing").
# Code execution is billed per container-hour on the platform account's invoice and not
# reported per request, so it is not sold for credits (decision 114).
PRICED_TOOL_TYPE_PREFIXES = (
    "custom",
    "bash_2",
    "text_editor_2",
    "computer_2",
    "memory_2",
    "web_search_2",
    "web_fetch_2",
)
# anthropic-beta values that change no price, or whose price the table covers. A beta that
# only makes a tool type available (advisor, advanced tool use) passes: the tool type itself
# is checked. Claude Code's own list (a captured v2.1 request: claude-code, interleaved
# thinking, thinking token count, context management, prompt-caching scope, mid-conversation
# system, advisor tool, effort, extended cache TTL, redact thinking) is all here, so its
# default requests run on credits.
PRICED_BETAS = frozenset(
    {
        "advanced-tool-use-2025-11-20",
        "advisor-tool-2026-03-01",
        "claude-code-20250219",
        "effort-2025-11-24",
        "mid-conversation-system-2026-04-07",
        "oauth-2025-04-20",
        "prompt-caching-scope-2026-01-05",
        "redact-thinking-2026-02-12",
        "computer-use-2024-10-22",
        "computer-use-2025-01-24",
        "computer-use-2025-11-24",
        "context-1m-2025-08-07",
        "context-management-2025-06-27",
        "extended-cache-ttl-2025-04-11",
        "fast-mode-2026-02-01",
        "files-api-2025-04-14",
        "fine-grained-tool-streaming-2025-05-14",
        "interleaved-thinking-2025-05-14",
        "mcp-client-2025-04-04",
        "mcp-client-2025-11-20",
        "model-context-window-exceeded-2025-08-26",
        "output-128k-2025-02-19",
        "pdfs-2024-09-25",
        "prompt-caching-2024-07-31",
        "structured-outputs-2025-11-13",
        "thinking-token-count-2026-05-13",
        "token-counting-2024-11-01",
        "token-efficient-tools-2025-02-19",
        "web-fetch-2025-09-10",
        "web-search-2025-03-05",
    }
)


def unpriced_features(body: Mapping[str, Any], beta: str | None, price: ModelPrice) -> list[str]:
    """Name what in this request the price table cannot charge for: body fields, values of
    ``speed`` / ``inference_geo`` / ``service_tier``, tool types and ``anthropic-beta``
    values. An empty list: every billable part of the request has a price."""
    found = [f"field '{name}'" for name in body if name not in PRICED_FIELDS]
    speed = body.get("speed")
    if speed not in (None, "standard") and not (speed == "fast" and price.fast_percent):
        found.append(f"speed {_shown(speed)}")
    geo = body.get("inference_geo")
    if geo not in (None, "global") and not (geo == "us" and price.us_inference_percent):
        found.append(f"inference_geo {_shown(geo)}")
    tier = body.get("service_tier")
    if tier is not None and tier not in PRICED_SERVICE_TIERS:
        found.append(f"service_tier {_shown(tier)}")
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if kind is not None and not str(kind).startswith(PRICED_TOOL_TYPE_PREFIXES):
            found.append(f"tool type {_shown(kind)}")
    for value in (beta or "").split(","):
        value = value.strip()
        if value and value not in PRICED_BETAS:
            found.append(f"anthropic-beta {_shown(value)}")
    return list(dict.fromkeys(found))


def _shown(value: Any) -> str:
    # Never repeats a key pasted into the wrong place (SPEC §15), and never a whole essay.
    text = str(value)
    return shown(f"{text[:60]}…" if len(text) > 60 else text)
