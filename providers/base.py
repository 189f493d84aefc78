"""The provider interface: what the gateway and the key checks need from a provider.

Each provider is one adapter behind this interface; nothing outside ``providers``
knows which SDK or HTTP shapes a provider uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import aiohttp
import httpx2


class CheckOutcome(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"  # no verdict: the provider could not be asked; try again later


@dataclass(frozen=True, slots=True)
class CheckResult:
    outcome: CheckOutcome
    reason: str = ""
    error_type: str = ""
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens as the provider counted them, in one shape for every provider.

    ``input_tokens`` are the input tokens read fresh: cache reads (and Anthropic's cache
    writes) are counted apart, so OpenAI's ``prompt_tokens`` and Gemini's
    ``promptTokenCount``, which include their cached part, are split here. ``output_tokens``
    are every billed output token, reasoning included; ``reasoning_output_tokens`` says how
    many of them were reasoning (OpenAI's ``reasoning_tokens``, Gemini's thoughts).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    # The cache writes split by how long the entry lives (the provider's ``cache_creation``);
    # 1-hour writes cost more than 5-minute ones. Both 0 when the provider gave no split.
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    # Server tools billed per use (the provider's ``server_tool_use``).
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    # How the request ran, as the provider reports it (None: not reported): fast mode and
    # US-only inference are billed at a multiple of the standard rates.
    speed: str | None = None
    inference_geo: str | None = None
    service_tier: str | None = None
    reasoning_output_tokens: int = 0
    # None when the provider's counts are trustworthy; else why not ("missing", "not an
    # integer", "negative", "too large"), and the counts above are not to be charged as given.
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class MessageResult:
    """A provider's answer to a non-streamed request: its JSON as sent (``content``) and as
    parsed (``body``), and the response headers a gateway passes on (``headers``)."""

    body: dict[str, Any]
    usage: Usage
    request_id: str | None
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class MessageStream(Protocol):
    """An open streamed answer: the provider's server-sent events as bytes, unchanged.

    ``summary`` fills in while the chunks are read (usage, request id, a mid-stream error);
    ``aclose()`` ends it early and gives its connection back.
    """

    headers: dict[str, str]
    summary: StreamSummary

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class StreamSummary:
    """Filled in while a stream is consumed; read after it ends.

    ``usage`` is the provider's own count once ``message_delta`` has arrived; before that
    (a stream that broke or was abandoned) its output is the estimate of what was relayed.
    ``error`` is the provider's ``error`` event, if the stream carried one.
    """

    usage: Usage = field(default_factory=Usage)
    request_id: str | None = None
    model: str | None = None
    finished: bool = False
    error: ProviderError | None = None
    # The output tokens of the deltas relayed so far (an estimate), for metering as it streams.
    output_tokens_seen: int = 0


class ProviderError(Exception):
    """A provider call failed."""

    error_type = "api_error"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        provider_error_type: str = "",
        request_id: str | None = None,
        retry_headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.provider_error_type = provider_error_type
        self.request_id = request_id
        # The provider's own advice to the client (retry-after, x-should-retry), as it sent it.
        self.retry_headers = retry_headers or {}


class KeyRejectedError(ProviderError):
    """The provider definitively refused the key (revoked, expired, mistyped, no permission)."""

    error_type = "llm_key_invalid"
    http_status = 409


class ProviderUnavailableError(ProviderError):
    """The provider could not answer now (timeout, connection, overload, 5xx); try later."""

    error_type = "provider_unavailable"
    http_status = 503


class ProviderRateLimitedError(ProviderError):
    """The provider is rate-limiting this key."""

    error_type = "rate_limit_error"
    http_status = 429


class ProviderRequestError(ProviderError):
    """The provider refused the request itself (bad parameters, unknown model, too large)."""

    error_type = "invalid_request_error"
    http_status = 400


@dataclass(frozen=True, slots=True)
class RelayRequest:
    """One request to a provider's own API, named in that provider's words.

    ``operation`` is one of the adapter's ``operations`` (``"chat.completions"``,
    ``"generateContent"``, ...); ``body`` is the client's JSON as sent, which the provider
    judges; ``model`` is the model where the provider puts it in the path (Gemini);
    ``params`` are the query parameters the provider defines (paging); ``headers`` are the
    client's API headers to pass on, never credentials; ``api_version`` is the API version
    the client called where the provider has several (Gemini's ``v1beta`` and ``v1``).
    """

    operation: str
    body: dict[str, Any] | None = None
    model: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    api_version: str | None = None


class KeyValidator(Protocol):
    """What the key checks need from every provider: a verdict on a key (§6)."""

    name: str

    def validate(self, api_key: str) -> CheckResult: ...


class RelayAdapter(KeyValidator, Protocol):
    """A provider whose own API the gateway relays: the answers are the provider's bytes,
    its errors are raised as ``ProviderError``s classified by the §6 rules."""

    operations: frozenset[str]
    stream_operations: frozenset[str]

    async def asend(self, *, api_key: str, request: RelayRequest) -> MessageResult: ...

    async def astream(self, *, api_key: str, request: RelayRequest) -> MessageStream: ...


class ProviderAdapter(Protocol):
    """What a provider offers. ``body`` is the whole request as the client sent it (the
    provider judges the fields); ``headers`` are the client's API headers to pass on (such
    as ``anthropic-version`` and ``anthropic-beta``), never credentials."""

    name: str

    def validate(self, api_key: str) -> CheckResult: ...

    async def acreate_message(
        self, *, api_key: str, body: dict[str, Any], headers: dict[str, str]
    ) -> MessageResult: ...

    async def astream_message(
        self, *, api_key: str, body: dict[str, Any], headers: dict[str, str]
    ) -> MessageStream: ...

    async def acount_tokens(
        self, *, api_key: str, body: dict[str, Any], headers: dict[str, str]
    ) -> MessageResult: ...

    async def alist_models(
        self, *, api_key: str, params: dict[str, str], headers: dict[str, str]
    ) -> MessageResult: ...

    def create_message(
        self, *, api_key: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> MessageResult: ...


def failed_check(error: ProviderError, *, provider: str, reason: str | None = None) -> CheckResult:
    """Classify a key probe the provider answered with ``error`` (SPEC §6): refused → invalid;
    429 → valid, since the provider recognised the key and is only busy; anything else →
    unknown, try again later (``reason`` for it, else the error's message)."""
    if isinstance(error, KeyRejectedError):
        return CheckResult(
            CheckOutcome.INVALID,
            reason=error.message,
            error_type=error.provider_error_type,
            status_code=error.status_code,
        )
    if isinstance(error, ProviderRateLimitedError):
        return CheckResult(
            CheckOutcome.VALID,
            reason=f"Recognised by {provider} (rate-limited during the check).",
            error_type=error.provider_error_type,
            status_code=429,
        )
    return CheckResult(
        CheckOutcome.UNKNOWN,
        reason=error.message if reason is None else reason,
        error_type=error.provider_error_type,
        status_code=error.status_code,
    )


def transport_failure(exc: BaseException, *, provider: str) -> ProviderError | None:
    """A timeout or a broken connection, whichever HTTP library (httpx, aiohttp) raised it,
    as the gateway's error; None for any other exception."""
    if isinstance(exc, (httpx2.TimeoutException, TimeoutError)):
        return ProviderUnavailableError(
            f"{provider} did not answer in time.", provider_error_type="timeout"
        )
    if isinstance(exc, (httpx2.TransportError, OSError, aiohttp.ClientError)):
        return ProviderUnavailableError(
            f"Could not connect to {provider}.", provider_error_type="connection_error"
        )
    return None


def ended_early(summary: StreamSummary, *, provider: str) -> None:
    """Raise if the provider closed its stream before the answer's end and said nothing
    (no error event): the connection broke, and the client must be told so."""
    if not summary.finished and summary.error is None:
        raise ProviderUnavailableError(
            f"{provider}'s stream ended before its answer did.",
            provider_error_type="connection_error",
        )
