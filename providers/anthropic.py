"""Anthropic, through the official SDK.

One SDK client (and so one pooled HTTP connection pool) per process; the workspace's key is
applied per request with ``with_options(api_key=...)``, which shares the pool. The key only
ever travels as the SDK's ``api_key``: never in headers built here, never in a URL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
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
    StreamEvent,
    StreamSummary,
    Usage,
)

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
                pool = settings.AI_HTTP_POOL_SIZE
                http_client = httpx2.Client(
                    limits=httpx2.Limits(
                        max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=60
                    ),
                    timeout=settings.AI_REQUEST_TIMEOUT_SECONDS,
                )
                # No api_key here: a request that forgets with_options fails locally with
                # a TypeError instead of going out under some other credential.
                client = anthropic.Anthropic(
                    api_key=None,
                    base_url=settings.ANTHROPIC_BASE_URL,
                    http_client=http_client,
                    # Given here too: the SDK ignores an http_client timeout equal to httpx's
                    # default (5 s), so AI_REQUEST_TIMEOUT_SECONDS=5 was silently 600 s.
                    timeout=settings.AI_REQUEST_TIMEOUT_SECONDS,
                    max_retries=2,
                )
                _clients[key] = client
    return client


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        input_tokens=getattr(usage, "input_tokens", 0) or 0,
        output_tokens=getattr(usage, "output_tokens", 0) or 0,
        cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
        cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
    )


def _usage_from_json(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        cache_read_input_tokens=usage.get("cache_read_input_tokens") or 0,
        cache_creation_input_tokens=usage.get("cache_creation_input_tokens") or 0,
    )


def _error_detail(exc: anthropic.APIStatusError) -> tuple[str, str]:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(error.get("type") or ""), str(error.get("message") or "")


_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "rate_limit_error": 429,
    "overloaded_error": 529,
}


def translate_error(exc: Exception) -> ProviderError:
    """Map an SDK exception to the gateway's provider errors (the §6 classification)."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderUnavailableError(
            "Anthropic did not answer in time.", provider_error_type="timeout"
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderUnavailableError(
            "Could not connect to Anthropic.", provider_error_type="connection_error"
        )
    if not isinstance(exc, anthropic.APIStatusError):
        return ProviderError(f"Unexpected error from the Anthropic SDK: {type(exc).__name__}.")
    status = exc.status_code
    error_type, message = _error_detail(exc)
    if status < 400:
        # An `error` event in the middle of a 200 stream: only its type says what went wrong.
        status = _STREAM_ERROR_STATUS.get(error_type, 500)
    request_id = exc.request_id
    kwargs = {"status_code": status, "provider_error_type": error_type, "request_id": request_id}
    if status == 401:
        return KeyRejectedError(REJECTED_REASON, **kwargs)
    if status == 403:
        return KeyRejectedError(NO_PERMISSION_REASON, **kwargs)
    if status == 429:
        return ProviderRateLimitedError(
            "Anthropic is rate-limiting this key; try again shortly.", **kwargs
        )
    if status in (408, 409) or status >= 500:
        label = "overloaded" if status == 529 else f"HTTP {status}"
        return ProviderUnavailableError(
            f"Anthropic is unavailable ({label}); try again later.", **kwargs
        )
    detail = f": {message}" if message else ""
    return ProviderRequestError(f"Anthropic refused the request ({status}){detail}", **kwargs)


class AnthropicAdapter:
    name = "anthropic"

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
            if isinstance(error, KeyRejectedError):
                return CheckResult(
                    CheckOutcome.INVALID,
                    reason=error.message,
                    error_type=error.provider_error_type,
                    status_code=error.status_code,
                )
            if isinstance(error, ProviderRateLimitedError):
                # 429 means Anthropic recognised the key; it is valid, just busy.
                return CheckResult(
                    CheckOutcome.VALID,
                    reason="Recognised by Anthropic (rate-limited during the check).",
                    error_type=error.provider_error_type,
                    status_code=429,
                )
            return CheckResult(
                CheckOutcome.UNKNOWN,
                reason=error.message,
                error_type=error.provider_error_type,
                status_code=error.status_code,
            )
        return CheckResult(CheckOutcome.VALID, reason="Accepted by Anthropic.", status_code=200)

    def create_message(
        self,
        *,
        api_key: str,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        system: Any = None,
    ) -> MessageResult:
        params: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
        if system is not None:
            params["system"] = system
        try:
            # The raw response: the gateway relays JSON, so building the SDK's typed Message
            # only to dump it back to a dict would be wasted work on every request.
            response = self._client(api_key).messages.with_raw_response.create(**params)
            body = response.json()
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc) from None
        if not isinstance(body, dict):
            raise ProviderError("Anthropic answered with something other than a message.")
        return MessageResult(
            body=body, usage=_usage_from_json(body.get("usage")), request_id=response.request_id
        )

    def stream_message(
        self,
        *,
        api_key: str,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        system: Any = None,
        summary: StreamSummary,
    ) -> Iterator[StreamEvent]:
        params: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "stream": True,
        }
        if system is not None:
            params["system"] = system
        try:
            stream = self._client(api_key).messages.create(**params)
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc) from None
        summary.request_id = getattr(stream, "_request_id", None) or stream.response.headers.get(
            "request-id"
        )
        usage = Usage()
        try:
            with stream:
                for event in stream:
                    data = event.model_dump(mode="json")
                    if event.type == "message_start":
                        usage = _usage(event.message.usage)
                        summary.model = event.message.model
                    elif event.type == "message_delta" and event.usage is not None:
                        delta = event.usage
                        usage = Usage(
                            input_tokens=getattr(delta, "input_tokens", None) or usage.input_tokens,
                            output_tokens=delta.output_tokens or usage.output_tokens,
                            cache_read_input_tokens=getattr(delta, "cache_read_input_tokens", None)
                            or usage.cache_read_input_tokens,
                            cache_creation_input_tokens=getattr(
                                delta, "cache_creation_input_tokens", None
                            )
                            or usage.cache_creation_input_tokens,
                        )
                    summary.usage = usage
                    yield StreamEvent(event=event.type, data=data)
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc) from None
