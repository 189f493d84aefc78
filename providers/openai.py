"""OpenAI, through the official SDK.

One SDK client per process (and one ``AsyncOpenAI`` per process and event loop), so one
pooled set of connections for every workspace; the workspace's key is applied per request
with ``with_options(api_key=...)``. The shared clients are built with a key callable that
raises, so a request that forgets the key fails here instead of going out under some other
credential. The key only travels as the SDK's ``api_key`` (its ``Authorization: Bearer``).

Requests pass through whole: the SDK's own request method for a path (``client.post(path,
cast_to=httpx2.Response, body=...)``, the SDK's documented way to call any endpoint) sends
the client's JSON unchanged, so the provider judges every field and the answer comes back as
its bytes, while the SDK still applies the key, timeouts, retries and raises its typed
errors. (The typed ``embeddings.create`` would, for instance, ask for base64 vectors when
the client asked for floats.)

Streamed chat completions report usage only when asked (``stream_options.include_usage``):
the adapter always asks, so every stream can be metered, and when the client did not ask it
drops the extra usage chunk and the ``"usage":null`` the request added to the others.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
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
    ended_early,
    failed_check,
    transport_failure,
)
from .per_loop import per_loop_client

REJECTED_REASON = "Rejected by OpenAI: the key was revoked, has expired or is mistyped."
NO_PERMISSION_REASON = "Rejected by OpenAI: the key lacks permission for the API."

# The operations relayed, by OpenAI's own paths (below the API's /v1 root).
PATHS = {
    "chat.completions": ("post", "/chat/completions"),
    "responses": ("post", "/responses"),
    "embeddings": ("post", "/embeddings"),
    "models.list": ("get", "/models"),
}
STREAM_OPERATIONS = frozenset(("chat.completions", "responses"))
RELAYED_HEADER_PREFIXES = ("x-ratelimit-",)
RELAYED_HEADERS = ("x-request-id", "retry-after", "openai-processing-ms")


def _no_key() -> str:
    raise ValueError("No API key given.")


async def _no_key_async() -> str:
    raise ValueError("No API key given.")


_lock = threading.Lock()
_clients: dict[tuple[int, str | None, int], openai.OpenAI] = {}


def _limits() -> httpx2.Limits:
    pool = settings.AI_HTTP_POOL_SIZE
    return httpx2.Limits(max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=60)


def _client_options(http_client: Any) -> dict[str, Any]:
    return {
        "base_url": settings.OPENAI_BASE_URL,
        "http_client": http_client,
        "timeout": settings.AI_REQUEST_TIMEOUT_SECONDS,
        "max_retries": 2,
    }


def shared_client() -> openai.OpenAI:
    """Return this process's client: built once per process (a fork gets its own pool)."""
    key = (os.getpid(), settings.OPENAI_BASE_URL, settings.AI_HTTP_POOL_SIZE)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                http_client = httpx2.Client(limits=_limits())
                client = openai.OpenAI(api_key=_no_key, **_client_options(http_client))
                _clients[key] = client
    return client


def shared_async_client() -> openai.AsyncOpenAI:
    """Return this event loop's async client, built on first use and closed with the loop."""
    key = ("openai", os.getpid(), settings.OPENAI_BASE_URL, settings.AI_HTTP_POOL_SIZE)
    return per_loop_client(key, _new_async_client)


def _new_async_client() -> openai.AsyncOpenAI:
    # aiohttp's transport, as for Anthropic (decision 026): its C parser reads a relayed
    # stream with a fraction of the CPU.
    http_client = openai.DefaultAioHttpClient(limits=_limits())
    return openai.AsyncOpenAI(api_key=_no_key_async, **_client_options(http_client))


def _required(api_key: str) -> str:
    if not api_key:
        raise ValueError("No API key given.")
    return api_key


def _error_detail(exc: openai.APIStatusError) -> tuple[str, str]:
    body = exc.body if isinstance(exc.body, dict) else {}
    # The SDK hands over the inner ``error`` object as ``body``.
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return str(error.get("code") or error.get("type") or ""), str(error.get("message") or "")


def translate_error(exc: Exception) -> ProviderError:
    """Map an SDK exception to the gateway's provider errors (the §6 classification)."""
    broken = transport_failure(exc, provider="OpenAI")
    if broken is not None:  # the connection broke or stalled while a stream was read
        return broken
    if isinstance(exc, openai.APITimeoutError):
        return ProviderUnavailableError(
            "OpenAI did not answer in time.", provider_error_type="timeout"
        )
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailableError(
            "Could not connect to OpenAI.", provider_error_type="connection_error"
        )
    if not isinstance(exc, openai.APIStatusError):
        return ProviderError(f"Unexpected error from the OpenAI SDK: {type(exc).__name__}.")
    status = exc.status_code
    error_type, message = _error_detail(exc)
    kwargs = {
        "status_code": status,
        "provider_error_type": error_type,
        "request_id": exc.request_id,
    }
    if status == 401:
        return KeyRejectedError(REJECTED_REASON, **kwargs)
    if status == 403:
        return KeyRejectedError(NO_PERMISSION_REASON, **kwargs)
    if status == 429:
        return ProviderRateLimitedError(
            "OpenAI is rate-limiting this key; try again shortly.", **kwargs
        )
    if status in (408, 409) or status >= 500:
        return ProviderUnavailableError(
            f"OpenAI is unavailable (HTTP {status}); try again later.", **kwargs
        )
    # OpenAI's own message names what was wrong with the request; a key is never in it
    # (a 401's message, which masks the key, is not used).
    detail = f": {message}" if message else ""
    return ProviderRequestError(f"OpenAI refused the request ({status}){detail}", **kwargs)


def usage_from_json(usage: Any) -> Usage:
    """Read the usage of a chat completion, a response or an embedding."""
    if not isinstance(usage, dict):
        return Usage()
    if "prompt_tokens" in usage:
        given = usage.get("prompt_tokens") or 0
        output = usage.get("completion_tokens") or 0
        input_details = usage.get("prompt_tokens_details") or {}
        output_details = usage.get("completion_tokens_details") or {}
    else:
        given = usage.get("input_tokens") or 0
        output = usage.get("output_tokens") or 0
        input_details = usage.get("input_tokens_details") or {}
        output_details = usage.get("output_tokens_details") or {}
    cached = input_details.get("cached_tokens") or 0
    return Usage(
        input_tokens=max(0, given - cached),
        output_tokens=output,
        cache_read_input_tokens=cached,
        reasoning_output_tokens=output_details.get("reasoning_tokens") or 0,
    )


def _relayed_headers(headers: httpx2.Headers) -> dict[str, str]:
    relayed = {
        name: value
        for name, value in headers.items()
        if name in RELAYED_HEADERS or name.startswith(RELAYED_HEADER_PREFIXES)
    }
    if "x-request-id" in relayed:
        # Also under the gateway's name for it on every answer (ai_gateway.request_ids),
        # which is passed on with AI credits too: the usage row stores this id.
        relayed["request-id"] = relayed["x-request-id"]
    return relayed


def _result(response: httpx2.Response) -> MessageResult:
    content = response.content
    try:
        body = json.loads(content)
    except ValueError:
        raise ProviderError("OpenAI answered with something other than JSON.") from None
    if not isinstance(body, dict):
        raise ProviderError("OpenAI answered with something other than a JSON object.")
    return MessageResult(
        body=body,
        usage=usage_from_json(body.get("usage")),
        request_id=response.headers.get("x-request-id"),
        content=content,
        headers=_relayed_headers(response.headers),
    )


def _options(request: RelayRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if request.headers:
        options["headers"] = dict(request.headers)
    if request.params:
        options["params"] = dict(request.params)
    return options


class OpenAIAdapter:
    name = "openai"
    operations = frozenset(PATHS)
    stream_operations = STREAM_OPERATIONS

    def validate(self, api_key: str) -> CheckResult:
        """Probe ``GET /v1/models`` with the key: short timeout, no retries."""
        client = shared_client().with_options(
            api_key=_required(api_key),
            timeout=settings.LLM_KEY_CHECK_TIMEOUT_SECONDS,
            max_retries=0,
        )
        try:
            # Only the status matters: the raw answer spares parsing the list of models.
            client.get("/models", cast_to=httpx2.Response)
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            return failed_check(translate_error(exc), provider="OpenAI")
        return CheckResult(CheckOutcome.VALID, reason="Accepted by OpenAI.", status_code=200)

    async def asend(self, *, api_key: str, request: RelayRequest) -> MessageResult:
        """Send a non-streamed request; return OpenAI's answer as it came."""
        method, path = self._route(request)
        client = shared_async_client().with_options(api_key=_required(api_key))
        body = dict(request.body or {})
        if method == "post":
            body.pop("stream", None)
        try:
            if method == "get":
                response = await client.get(
                    path, cast_to=httpx2.Response, options=_options(request)
                )
            else:
                response = await client.post(
                    path, cast_to=httpx2.Response, body=body, options=_options(request)
                )
        except Exception as exc:  # noqa: BLE001 - every failure is classified
            raise translate_error(exc) from None
        return _result(response)

    async def astream(self, *, api_key: str, request: RelayRequest) -> OpenAIStream:
        """Open a streamed request: a refusal (401, 429, 5xx) raises here, before any byte is
        relayed, so it can be answered with its own status."""
        if request.operation not in STREAM_OPERATIONS:
            raise ValueError(f"OpenAI does not stream '{request.operation}'.")
        _, path = self._route(request)
        client = shared_async_client().with_options(api_key=_required(api_key))
        body = {**(request.body or {}), "stream": True}
        strip_usage = False
        if request.operation == "chat.completions":
            stream_options = dict(body.get("stream_options") or {})
            strip_usage = not stream_options.get("include_usage")
            body["stream_options"] = {**stream_options, "include_usage": True}
        try:
            response = await client.post(
                path,
                cast_to=httpx2.Response,
                body=body,
                options=_options(request),
                stream=True,
                stream_cls=openai.AsyncStream[Any],
            )
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc) from None
        http_response = response if isinstance(response, httpx2.Response) else response.response
        return OpenAIStream(http_response, operation=request.operation, strip_usage=strip_usage)

    @staticmethod
    def _route(request: RelayRequest) -> tuple[str, str]:
        try:
            return PATHS[request.operation]
        except KeyError:
            raise ValueError(f"OpenAI has no operation '{request.operation}'.") from None


# Before the provider's usage arrives, a stream's output is estimated from what was relayed:
# one token per three characters, at least one per delta (as for Anthropic, decision 021).
CHARACTERS_PER_OUTPUT_TOKEN = 3
FINAL_RESPONSE_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class OpenAIStream:
    """OpenAI's server-sent events, relayed as bytes; see ``MessageStream``."""

    def __init__(self, response: httpx2.Response, *, operation: str, strip_usage: bool):
        self._response = response
        self._operation = operation
        self._strip_usage = strip_usage
        self._pending = b""
        self._estimated_output = 0
        self._closed = False
        # The Responses API numbers its events; an error event the gateway adds continues.
        self.next_sequence_number = 0
        self.headers = _relayed_headers(response.headers)
        self.summary = StreamSummary(request_id=response.headers.get("x-request-id"))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._response.aiter_bytes():
                self._pending += data
                *events, self._pending = self._pending.split(b"\n\n")
                out = [event for event in map(self._read, events) if event is not None]
                if out:
                    yield b"".join(event + b"\n\n" for event in out)
            if self._pending.strip():
                event = self._read(self._pending)
                if event is not None:
                    yield event
        except Exception as exc:  # noqa: BLE001 - the connection broke or stalled mid-stream
            raise translate_error(exc) from None
        finally:
            await self.aclose()
        ended_early(self.summary, provider="OpenAI")

    def _read(self, event: bytes) -> bytes | None:
        """Note what settlement needs from one event; return the event to relay, or None."""
        payload = event.partition(b"data: ")[2]
        if not payload or payload == b"[DONE]":
            if payload == b"[DONE]":
                self.summary.finished = True
            return event
        try:
            data = json.loads(payload)
        except ValueError:
            return event
        if not isinstance(data, dict):
            return event
        if isinstance(data.get("error"), dict) or data.get("type") == "error":
            self.summary.error = self._error(data)
            return event
        if self._operation == "chat.completions":
            return self._read_chunk(event, data)
        kind = data.get("type")
        sequence = data.get("sequence_number")
        if isinstance(sequence, int):
            self.next_sequence_number = sequence + 1
        if kind == "response.output_text.delta":
            self._estimate(str(data.get("delta") or ""))
        elif kind in FINAL_RESPONSE_EVENTS:
            response = data.get("response") or {}
            self.summary.model = response.get("model")
            self.summary.usage = usage_from_json(response.get("usage"))
            self.summary.finished = True
        elif kind == "response.created":
            self.summary.model = (data.get("response") or {}).get("model")
        return event

    def _read_chunk(self, event: bytes, data: dict[str, Any]) -> bytes | None:
        self.summary.model = data.get("model") or self.summary.model
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.summary.usage = usage_from_json(usage)
            self.summary.finished = True
            if self._strip_usage and not data.get("choices"):
                return None
        else:
            for choice in data.get("choices") or []:
                delta = choice.get("delta") or {}
                self._estimate(str(delta.get("content") or "") + str(delta.get("refusal") or ""))
        if self._strip_usage:
            event = event.replace(b',"usage":null', b"")
        return event

    def _estimate(self, text: str) -> None:
        self._estimated_output += max(1, -(-len(text) // CHARACTERS_PER_OUTPUT_TOKEN))
        # What the gateway meters the stream by as it goes (ai_gateway.streams).
        self.summary.output_tokens_seen = self._estimated_output
        if not self.summary.finished:
            self.summary.usage = Usage(
                input_tokens=self.summary.usage.input_tokens,
                output_tokens=self._estimated_output,
            )

    def _error(self, data: dict[str, Any]) -> ProviderError:
        error = data.get("error") if isinstance(data.get("error"), dict) else data
        code = str(error.get("code") or error.get("type") or "")
        message = str(error.get("message") or "stream error")
        if code in ("rate_limit_exceeded", "insufficient_quota"):
            return ProviderRateLimitedError(message, status_code=429, provider_error_type=code)
        return ProviderUnavailableError(
            f"OpenAI's stream failed: {message}", status_code=500, provider_error_type=code
        )

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._response.aclose()
