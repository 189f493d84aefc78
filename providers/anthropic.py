"""Anthropic, through the official SDK.

One SDK client (and so one pooled HTTP connection pool) per process, and for the gateway's
async views one ``AsyncAnthropic`` per process and event loop, closed when its loop ends
(``providers.per_loop``); the workspace's key is applied per request with
``with_options(api_key=...)``, which shares the pool. The key only ever travels as the
SDK's ``api_key``: never in headers built here, never in a URL.

Requests pass through whole: the fields of the pinned SDK's ``messages.create`` go as its
arguments, any other field as ``extra_body``, so the provider judges them all. Answers come
back as the provider's bytes; a stream is relayed as its server-sent events, and only the
events settlement needs (``message_start``, ``message_delta``, ``error``) are parsed.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anthropic
import httpx2
from anthropic._models import FinalRequestOptions
from anthropic.resources.messages import AsyncMessages
from django.conf import settings

from .base import (
    CheckOutcome,
    CheckResult,
    KeyRejectedError,
    MessageResult,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderUnavailableError,
    RelayRequest,
    StreamSummary,
    Usage,
    failed_check,
)
from .per_loop import per_loop_client

REJECTED_REASON = "Rejected by Anthropic: the key was revoked, has expired or is mistyped."
NO_PERMISSION_REASON = "Rejected by Anthropic: the key lacks permission for the API."

_lock = threading.Lock()
_clients: dict[tuple[int, str | None, int], anthropic.Anthropic] = {}


def shared_client() -> anthropic.Anthropic:
    """Return this process's client: built once per process (a fork gets its own pool)."""
    key = (os.getpid(), settings.ANTHROPIC_BASE_URL, settings.AI_HTTP_POOL_SIZE)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                http_client = httpx2.Client(limits=_limits())
                # No api_key here: a request that forgets with_options fails locally with
                # a TypeError instead of going out under some other credential.
                client = anthropic.Anthropic(api_key=None, **_client_options(http_client))
                _clients[key] = client
    return client


def _limits() -> httpx2.Limits:
    pool = settings.AI_HTTP_POOL_SIZE
    return httpx2.Limits(max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=60)


def _client_options(http_client: Any) -> dict[str, Any]:
    # The timeout goes to the SDK client, not only to the HTTP client: the SDK replaces an
    # HTTP client's timeout that equals the HTTP library's default (5 s) with its own.
    return {
        "base_url": settings.ANTHROPIC_BASE_URL,
        "http_client": http_client,
        "timeout": settings.AI_REQUEST_TIMEOUT_SECONDS,
        # One retry policy, the client's: its SDK retries (it sees the provider's status,
        # retry-after and x-should-retry); the gateway retrying too would multiply one
        # client attempt into several upstream ones, and charges (SPEC §17).
        "max_retries": 0,
    }


def shared_async_client() -> anthropic.AsyncAnthropic:
    """Return this event loop's async client, built on first use and closed with the loop."""
    key = ("anthropic", os.getpid(), settings.ANTHROPIC_BASE_URL, settings.AI_HTTP_POOL_SIZE)
    return per_loop_client(key, _new_async_client)


def _new_async_client() -> anthropic.AsyncAnthropic:
    # aiohttp's transport (the SDK's `aiohttp` extra): its C HTTP parser reads a relayed
    # stream with a fraction of the CPU of the pure-Python one (decision 026).
    http_client = anthropic.DefaultAioHttpClient(limits=_limits())
    return anthropic.AsyncAnthropic(api_key=None, **_client_options(http_client))


# Parameters of the SDK's methods that it sends as request headers, not body fields
# (`anthropic-workspace-id`, `anthropic-user-profile-id`). A body field of that name stays a
# body field: on the platform key a client must not pick the platform account's workspace or
# profile, and on any key only the allow-list of headers (anthropic-version, anthropic-beta)
# is the client's to set (SPEC §17).
HEADER_PARAMETERS = frozenset({"workspace_id", "user_profile_id", "betas"})


def _sdk_parameters(method: Any) -> frozenset[str]:
    names = inspect.signature(method).parameters
    return frozenset(
        name
        for name in names
        if name not in ("self", "timeout")
        and name not in HEADER_PARAMETERS
        and not name.startswith("extra_")
    )


# The request fields the pinned SDK knows; any other field still passes (as extra_body).
MESSAGE_FIELDS = _sdk_parameters(AsyncMessages.create)
COUNT_TOKENS_FIELDS = _sdk_parameters(AsyncMessages.count_tokens)

# Response headers worth passing on to the caller of a workspace's own key.
RELAYED_HEADER_PREFIXES = ("anthropic-ratelimit-",)
RELAYED_HEADERS = ("request-id", "retry-after")


def _sdk_arguments(
    body: dict[str, Any], fields: frozenset[str], headers: dict[str, str]
) -> dict[str, Any]:
    arguments = {name: value for name, value in body.items() if name in fields}
    extra = {name: value for name, value in body.items() if name not in fields}
    if extra:
        arguments["extra_body"] = extra
    if headers:
        arguments["extra_headers"] = headers
    return arguments


def _relayed_headers(headers: httpx2.Headers) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name in RELAYED_HEADERS or name.startswith(RELAYED_HEADER_PREFIXES)
    }


# Bounds on the counts a provider reports: a count above them is garbled, not usage. No model
# reads more than 1M tokens of context or writes more than 300k tokens (the output-300k beta),
# so twice those leave room for the largest real request (docs/decisions/111).
MAX_REPORTED_INPUT_TOKENS = 2_000_000
MAX_REPORTED_OUTPUT_TOKENS = 1_000_000
MAX_REPORTED_TOOL_REQUESTS = 10_000
_COUNT_BOUNDS = {
    "input_tokens": MAX_REPORTED_INPUT_TOKENS,
    "output_tokens": MAX_REPORTED_OUTPUT_TOKENS,
    "cache_read_input_tokens": MAX_REPORTED_INPUT_TOKENS,
    "cache_creation_input_tokens": MAX_REPORTED_INPUT_TOKENS,
}
_SPLIT_FIELDS = {
    "ephemeral_5m_input_tokens": "cache_creation_5m_input_tokens",
    "ephemeral_1h_input_tokens": "cache_creation_1h_input_tokens",
}
_SERVER_TOOL_FIELDS = ("web_search_requests", "web_fetch_requests")
_LABELS = ("speed", "inference_geo", "service_tier")


def _checked_count(value: Any, bound: int) -> tuple[int, str | None]:
    """Return a reported count and None, or 0 and why the count cannot be trusted."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0, "not an integer"
    if value < 0:
        return 0, "negative"
    if value > bound:
        return 0, "too large"
    return value, None


def _read_usage(usage: Any, *, required: tuple[str, ...]) -> tuple[dict[str, Any], str | None]:
    """The fields of a provider's ``usage`` object that it gives, checked; and the first
    problem found. A ``required`` count that is absent or null is "missing", never 0."""
    if not isinstance(usage, dict):
        return {}, "missing"
    values: dict[str, Any] = {}
    problems: list[str] = []

    def take(source: dict[str, Any], name: str, field_name: str, bound: int) -> None:
        value = source.get(name)
        if value is None:
            if name in required:
                problems.append("missing")
            return
        values[field_name], problem = _checked_count(value, bound)
        if problem:
            problems.append(problem)

    for name, bound in _COUNT_BOUNDS.items():
        take(usage, name, name, bound)
    split = usage.get("cache_creation")
    if isinstance(split, dict):
        for name, field_name in _SPLIT_FIELDS.items():
            take(split, name, field_name, MAX_REPORTED_INPUT_TOKENS)
    tools = usage.get("server_tool_use")
    if isinstance(tools, dict):
        for name in _SERVER_TOOL_FIELDS:
            take(tools, name, name, MAX_REPORTED_TOOL_REQUESTS)
    elif tools is not None:
        problems.append("not an integer")
    for name in _LABELS:
        if isinstance(usage.get(name), str):
            values[name] = usage[name]
    return values, (problems[0] if problems else None)


def _usage_from_json(usage: Any) -> Usage:
    """A non-streamed answer's (or ``message_start``'s) usage, validated (decision 111)."""
    values, problem = _read_usage(usage, required=("input_tokens", "output_tokens"))
    return Usage(**values, problem=problem)


def _error_detail(exc: anthropic.APIStatusError) -> tuple[str, str]:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(error.get("type") or ""), str(error.get("message") or "")


_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
# Anthropic's error type for each status (docs.claude.com/en/api/errors, "HTTP errors"),
# for an error answer whose body did not say.
_STATUS_ERROR_TYPE = {status: error_type for error_type, status in _STREAM_ERROR_STATUS.items()}
# The provider's advice on retrying, passed on to the client as it was sent: `retry-after`
# on 429 (docs.claude.com/en/api/rate-limits, "Response headers") and the SDKs' own
# `x-should-retry`, which they obey before their status rules (anthropic-sdk-python
# `_base_client._should_retry`).
RETRY_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
# Errors the SDK raises before anything is sent: a field of the wrong type, a body nested
# past the recursion limit, a header value the HTTP library refuses (CR/LF). The request
# itself is at fault, so they are the client's 400, not the provider's 5xx.
_LOCAL_ERRORS = (TypeError, ValueError, RecursionError, httpx2.LocalProtocolError)


def translate_error(exc: Exception) -> ProviderError:
    """Map an SDK exception to the gateway's provider errors (the §6 classification), keeping
    the provider's status, error type, message, request id and retry advice (SPEC §17)."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderUnavailableError(
            "Anthropic did not answer in time.", provider_error_type="timeout"
        )
    if isinstance(exc, anthropic.APIConnectionError):
        if isinstance(exc.__cause__, _LOCAL_ERRORS):
            return _local_error(exc.__cause__)
        return ProviderUnavailableError(
            "Could not connect to Anthropic.", provider_error_type="connection_error"
        )
    if isinstance(exc, _LOCAL_ERRORS):
        return _local_error(exc)
    if not isinstance(exc, anthropic.APIStatusError):
        return ProviderError(f"Unexpected error from the Anthropic SDK: {type(exc).__name__}.")
    status = exc.status_code
    error_type, message = _error_detail(exc)
    retry_headers = {}
    if status < 400:
        # An `error` event in the middle of a 200 stream: only its type says what went wrong.
        status = _STREAM_ERROR_STATUS.get(error_type, 500)
    else:
        retry_headers = {
            name: exc.response.headers[name]
            for name in RETRY_HEADERS
            if name in exc.response.headers
        }
    kwargs = {
        "status_code": status,
        "provider_error_type": error_type,
        "request_id": exc.request_id,
        "retry_headers": retry_headers,
    }
    if status == 401:
        return KeyRejectedError(REJECTED_REASON, **kwargs)
    if status == 403:
        return KeyRejectedError(NO_PERMISSION_REASON, **kwargs)
    if status == 429:
        error = ProviderRateLimitedError(
            message or "Anthropic is rate-limiting this key.", **kwargs
        )
    elif status in (408, 409) or status >= 500:
        error = ProviderUnavailableError(message or f"Anthropic answered {status}.", **kwargs)
    else:
        error = ProviderRequestError(
            message or f"Anthropic refused the request ({status}).", **kwargs
        )
    # The client sees the provider's own status and type, so its SDK raises the class it
    # would against Anthropic (OverloadedError for 529, NotFoundError for 404, ...).
    error.http_status = status
    error.error_type = error_type or _STATUS_ERROR_TYPE.get(status, "api_error")
    return error


def _check_reason(error: ProviderError) -> str:
    """What a key check records when Anthropic gave no verdict on the key (settings page)."""
    status = error.status_code
    if status is None:
        return error.message
    if isinstance(error, ProviderUnavailableError):
        label = "overloaded" if status == 529 else f"HTTP {status}"
        return f"Anthropic is unavailable ({label}); try again later."
    return f"Anthropic refused the request ({status}): {error.message}"


def _local_error(exc: BaseException) -> ProviderError:
    reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
    return ProviderRequestError(
        f"The request cannot be sent to Anthropic: {reason}.",
        provider_error_type="invalid_request_error",
    )


class AnthropicAdapter:
    name = "anthropic"
    # The relay interface (``RelayAdapter``) over the Messages API methods below.
    operations = frozenset(("messages", "messages.count_tokens", "models.list"))
    stream_operations = frozenset(("messages",))

    def _client(self, api_key: str, **options: Any) -> anthropic.Anthropic:
        if not api_key:
            raise ValueError("No API key given.")
        return shared_client().with_options(api_key=api_key, **options)

    def validate(self, api_key: str) -> CheckResult:
        """Probe ``GET /v1/models?limit=1`` with the key: short timeout, no retries."""
        client = self._client(
            api_key, timeout=settings.LLM_KEY_CHECK_TIMEOUT_SECONDS, max_retries=0
        )
        try:
            # The raw response: only the status matters, so parsing the page of models (and
            # building its types on a process's first probe) would be wasted work per check.
            client.models.with_raw_response.list(limit=1)
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            error = translate_error(exc)
            return failed_check(error, provider="Anthropic", reason=_check_reason(error))
        return CheckResult(CheckOutcome.VALID, reason="Accepted by Anthropic.", status_code=200)

    def create_message(
        self, *, api_key: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> MessageResult:
        """Send a non-streamed request (the sync side: pages and Python callers)."""
        try:
            response = self._client(api_key).messages.with_raw_response.create(
                **_sdk_arguments(body, MESSAGE_FIELDS, headers or {})
            )
        except Exception as exc:  # noqa: BLE001 - every failure is classified
            raise translate_error(exc) from None
        return _message_result(response.http_response)

    async def acreate_message(
        self, *, api_key: str, body: dict[str, Any], headers: dict[str, str]
    ) -> MessageResult:
        """Send a non-streamed request; return the provider's answer as it came."""
        arguments = _sdk_arguments(body, MESSAGE_FIELDS, headers)
        return await _raw(
            api_key, lambda client: client.messages.with_raw_response.create(**arguments)
        )

    async def astream_message(
        self, *, api_key: str, body: dict[str, Any], headers: dict[str, str]
    ) -> AnthropicMessageStream:
        """Open a streamed request: a refusal (401, 429, 5xx) raises here, before any byte is
        relayed, so it can be answered with its own status."""
        client = shared_async_client().with_options(api_key=_required(api_key))
        arguments = _sdk_arguments({**body, "stream": True}, MESSAGE_FIELDS, headers)
        stack = AsyncExitStack()
        try:
            response = await stack.enter_async_context(
                client.messages.with_streaming_response.create(**arguments)
            )
        except Exception as exc:  # noqa: BLE001
            await stack.aclose()
            raise translate_error(exc) from None
        return AnthropicMessageStream(response.http_response, stack)

    async def acount_tokens(
        self, *, api_key: str, body: dict[str, Any], headers: dict[str, str]
    ) -> MessageResult:
        arguments = _sdk_arguments(body, COUNT_TOKENS_FIELDS, headers)
        return await _raw(
            api_key, lambda client: client.messages.with_raw_response.count_tokens(**arguments)
        )

    async def asend(self, *, api_key: str, request: RelayRequest) -> MessageResult:
        """Send a non-streamed request named by its operation (the relay interface)."""
        body, headers = dict(request.body or {}), dict(request.headers)
        if request.operation == "messages":
            return await self.acreate_message(api_key=api_key, body=body, headers=headers)
        if request.operation == "messages.count_tokens":
            return await self.acount_tokens(api_key=api_key, body=body, headers=headers)
        if request.operation == "models.list":
            return await self.alist_models(
                api_key=api_key, params=dict(request.params), headers=headers
            )
        raise ValueError(f"Anthropic has no operation '{request.operation}'.")

    async def astream(self, *, api_key: str, request: RelayRequest) -> AnthropicMessageStream:
        """Open a streamed request named by its operation (the relay interface)."""
        if request.operation not in self.stream_operations:
            raise ValueError(f"Anthropic does not stream '{request.operation}'.")
        return await self.astream_message(
            api_key=api_key, body=dict(request.body or {}), headers=dict(request.headers)
        )

    async def alist_models(
        self, *, api_key: str, params: dict[str, str], headers: dict[str, str]
    ) -> MessageResult:
        paging = {
            name: params[name] for name in ("limit", "after_id", "before_id") if name in params
        }
        return await _raw(
            api_key,
            lambda client: client.models.with_raw_response.list(
                **paging, extra_headers=headers or None
            ),
        )

    async def aretrieve_model(
        self, *, api_key: str, model_id: str, headers: dict[str, str]
    ) -> MessageResult:
        return await _raw(
            api_key,
            lambda client: client.models.with_raw_response.retrieve(
                model_id, extra_headers=headers or None
            ),
        )

    async def arelay(
        self,
        *,
        api_key: str,
        method: str,
        path: str,
        params: dict[str, str],
        content: bytes,
        headers: dict[str, str],
    ) -> MessageResult:
        """Send one request of an API the gateway does not interpret (Message Batches,
        Files) as it came, with the workspace's key; return the answer's bytes as they came
        (JSON, JSONL or a file) and its content type among the headers."""
        client = shared_async_client().with_options(api_key=_required(api_key))
        options = FinalRequestOptions.construct(
            method=method.lower(),
            url=path,
            params=params,
            headers=headers,
            content=content or None,
        )
        try:
            response = await client.request(httpx2.Response, options)
        except Exception as exc:  # noqa: BLE001 - every failure is classified
            raise translate_error(exc) from None
        relayed = _relayed_headers(response.headers)
        if "content-type" in response.headers:
            relayed["content-type"] = response.headers["content-type"]
        return MessageResult(
            body={},
            usage=Usage(),
            request_id=response.headers.get("request-id"),
            content=response.content,
            headers=relayed,
        )


async def _raw(api_key: str, send: Any) -> MessageResult:
    """Send one request with the workspace's key on the shared async client; return the
    provider's answer as it came, or raise its error classified (§6)."""
    client = shared_async_client().with_options(api_key=_required(api_key))
    try:
        response = await send(client)
    except Exception as exc:  # noqa: BLE001 - every failure is classified
        raise translate_error(exc) from None
    return _message_result(response.http_response)


def _required(api_key: str) -> str:
    if not api_key:
        raise ValueError("No API key given.")
    return api_key


def _message_result(response: httpx2.Response) -> MessageResult:
    content = response.content
    try:
        body = json.loads(content)
    except ValueError:
        raise ProviderError("Anthropic answered with something other than JSON.") from None
    if not isinstance(body, dict):
        raise ProviderError("Anthropic answered with something other than a JSON object.")
    return MessageResult(
        body=body,
        usage=_usage_from_json(body.get("usage")),
        request_id=response.headers.get("request-id"),
        content=content,
        headers=_relayed_headers(response.headers),
    )


# Before message_delta reports the real count, the output of a stream is estimated from the
# deltas relayed: one token per three characters of text, and at least one per delta
# (Claude averages 3-4 characters of English per token; docs/decisions/021).
CHARACTERS_PER_OUTPUT_TOKEN = 3
DELTA_TEXT_FIELDS = ("text", "partial_json", "thinking")


class AnthropicMessageStream:
    """The provider's server-sent events, relayed as bytes; see ``MessageStream``."""

    def __init__(self, response: httpx2.Response, stack: AsyncExitStack):
        self._response = response
        self._stack = stack
        self._pending = b""
        self._delta_output_tokens = 0
        self._closed = False
        self.headers = _relayed_headers(response.headers)
        self.summary = StreamSummary(request_id=response.headers.get("request-id"))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                self._scan(chunk)
                yield chunk
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - the connection broke mid-stream
            raise translate_error(exc) from None
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if not self.summary.finished:
                # No message_delta: the output is what the relayed deltas add up to.
                usage = self.summary.usage
                output = max(usage.output_tokens, self._delta_output_tokens)
                self.summary.usage = _replace_usage(usage, output_tokens=output)
            await self._stack.aclose()

    def _scan(self, chunk: bytes) -> None:
        """Read what settlement needs from the events that end in this chunk."""
        data = self._pending + chunk if self._pending else chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data
            return
        self._pending = data[end + 2 :]
        for event in data[:end].split(b"\n\n"):
            if event.startswith(b"event: content_block_delta"):
                self._delta_output_tokens += _delta_tokens(event)
                self.summary.output_tokens_seen = self._delta_output_tokens
            elif event.startswith(
                (b"event: message_start", b"event: message_delta", b"event: error")
            ):
                self._read_event(event)

    def _read_event(self, event: bytes) -> None:
        name, _, rest = event.partition(b"\n")
        payload = rest.partition(b"data: ")[2]
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        summary = self.summary
        if name == b"event: message_start":
            message = data.get("message") if isinstance(data.get("message"), dict) else {}
            model = message.get("model")
            summary.model = model if isinstance(model, str) else None
            summary.usage = _usage_from_json(message.get("usage"))
        elif name == b"event: message_delta":
            summary.usage = _merge_usage(summary.usage, data.get("usage"))
            summary.finished = True
        else:
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            summary.error = translate_error(
                anthropic.APIStatusError(
                    str(error.get("message") or "stream error"),
                    response=self._response,
                    body=data,
                )
            )


def _delta_tokens(event: bytes) -> int:
    try:
        delta = json.loads(event.partition(b"data: ")[2]).get("delta") or {}
    except (ValueError, AttributeError):
        return 1
    characters = sum(len(delta.get(name) or "") for name in DELTA_TEXT_FIELDS)
    return max(1, -(-characters // CHARACTERS_PER_OUTPUT_TOKEN))


def _replace_usage(usage: Usage, **changes: Any) -> Usage:
    values = {name: getattr(usage, name) for name in Usage.__slots__}
    values.update(changes)
    return Usage(**values)


def _merge_usage(usage: Usage, delta: Any) -> Usage:
    """Apply a ``message_delta``'s usage: its counts are cumulative and win where given; it
    must give ``output_tokens``, and a garbled count marks the whole usage untrusted."""
    values, problem = _read_usage(delta, required=("output_tokens",))
    return _replace_usage(usage, **values, problem=usage.problem or problem)
