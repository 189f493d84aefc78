"""Google Gemini (the Gemini API with an API key), through the official ``google-genai`` SDK.

One SDK client per process: building one makes three TLS contexts (about 70 ms), so a client
per request or per key would cost more than the request. The SDK keeps one connection pool
for the sync side and one aiohttp session per event loop for the async side. The workspace's
key is applied per request through the SDK's per-request ``HttpOptions`` (the SDK itself
sends a client's key as ``x-goog-api-key``, never in the URL); the shared client is built
with a placeholder whose header is then dropped, and every call here goes through
``_request_options``, which refuses an empty key, so no request goes out under another
credential.

Requests pass through whole: the SDK's request layer (``BaseApiClient.async_request`` and,
for streams, the raw response of ``_async_request``) sends the client's JSON unchanged to
``{base}/{version}/models/{model}:{method}``, so Google judges every field, and the answer
comes back as Google's bytes. The typed methods (``models.generate_content``) would rewrite
both directions through the SDK's own types. This leans on the SDK's internals; the adapter's
tests pin the behaviour to the version in the lock.

Google refuses a bad, revoked or expired key with 400 ``INVALID_ARGUMENT`` and reason
``API_KEY_INVALID`` rather than 401 (https://ai.google.dev/gemini-api/docs/troubleshooting):
that is an invalid key, like 401 and 403 ``PERMISSION_DENIED``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx2
from django.conf import settings
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

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

REJECTED_REASON = "Rejected by Google: the Gemini key is not valid, has expired or was deleted."
NO_PERMISSION_REASON = "Rejected by Google: the key's project may not use the Gemini API."

# The operations relayed, by the Gemini API's own method names.
MODEL_METHODS = frozenset(
    (
        "generateContent",
        "streamGenerateContent",
        "countTokens",
        "embedContent",
        "batchEmbedContents",
    )
)
OPERATIONS = MODEL_METHODS | {"models.list", "models.get"}
STREAM_OPERATIONS = frozenset(("streamGenerateContent",))
API_VERSIONS = ("v1beta", "v1")
# A model id as Google names them ("gemini-2.5-flash", "gemini-embedding-001"); anything else
# would change the path of the request.
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
LIST_PARAMS = ("pageSize", "pageToken")
_PLACEHOLDER_KEY = "placeholder-applied-per-request"

_lock = threading.Lock()
_clients: dict[tuple[int, str | None, int, float], genai.Client] = {}


def shared_client() -> genai.Client:
    """Return this process's client: built once per process (a fork gets its own pool)."""
    key = (
        os.getpid(),
        settings.GEMINI_BASE_URL,
        settings.AI_HTTP_POOL_SIZE,
        settings.AI_REQUEST_TIMEOUT_SECONDS,
    )
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                pool = settings.AI_HTTP_POOL_SIZE
                limits = httpx2.Limits(
                    max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=60
                )
                options = types.HttpOptions(
                    base_url=settings.GEMINI_BASE_URL or None,
                    timeout=int(settings.AI_REQUEST_TIMEOUT_SECONDS * 1000),
                    httpx_client=httpx2.Client(limits=limits),
                )
                client = genai.Client(api_key=_PLACEHOLDER_KEY, http_options=options)
                # The SDK needs a key to build a Gemini API client; the placeholder's header
                # goes, so only a key given per request is ever sent.
                client._api_client._http_options.headers.pop("x-goog-api-key", None)
                _clients[key] = client
    return client


def _request_options(
    api_key: str,
    *,
    headers: dict[str, str] | None = None,
    timeout_seconds: float | None = None,
    api_version: str | None = None,
) -> types.HttpOptions:
    if not api_key:
        raise ValueError("No API key given.")
    return types.HttpOptions(
        headers={**(headers or {}), "x-goog-api-key": api_key},
        timeout=int(timeout_seconds * 1000) if timeout_seconds else None,
        api_version=api_version,
        # One attempt: no SDK retries, and no implicit sleep-and-retry on a dropped connection.
        retry_options=types.HttpRetryOptions(attempts=1),
    )


def _reasons(details: Any) -> set[str]:
    error = details.get("error") if isinstance(details, dict) else None
    found = (error or {}).get("details") if isinstance(error, dict) else None
    return {str(d.get("reason")) for d in found or [] if isinstance(d, dict) and d.get("reason")}


def translate_error(exc: BaseException) -> ProviderError:
    """Map an SDK or transport exception to the gateway's provider errors (§6)."""
    if not isinstance(exc, genai_errors.APIError):
        return transport_failure(exc, provider="Google") or ProviderError(
            f"Unexpected error from the Gemini SDK: {type(exc).__name__}."
        )
    status = int(exc.code or 500)
    error_type = str(exc.status or "")
    kwargs = {"status_code": status, "provider_error_type": error_type}
    if status == 401 or (status == 400 and "API_KEY_INVALID" in _reasons(exc.details)):
        return KeyRejectedError(REJECTED_REASON, **kwargs)
    if status == 403:
        return KeyRejectedError(NO_PERMISSION_REASON, **kwargs)
    if status == 429:
        return ProviderRateLimitedError(
            "Google is rate-limiting this key; try again shortly.", **kwargs
        )
    if status in (408, 409) or status >= 500:
        return ProviderUnavailableError(
            f"Google is unavailable (HTTP {status}); try again later.", **kwargs
        )
    detail = f": {exc.message}" if exc.message else ""
    return ProviderRequestError(f"Google refused the request ({status}){detail}", **kwargs)


def usage_from_json(metadata: Any) -> Usage:
    """Read a ``usageMetadata``: the cached part of the prompt apart, thoughts in the output."""
    if not isinstance(metadata, dict):
        return Usage()
    cached = metadata.get("cachedContentTokenCount") or 0
    prompt = (metadata.get("promptTokenCount") or 0) + (
        metadata.get("toolUsePromptTokenCount") or 0
    )
    thoughts = metadata.get("thoughtsTokenCount") or 0
    return Usage(
        input_tokens=max(0, prompt - cached),
        output_tokens=(metadata.get("candidatesTokenCount") or 0) + thoughts,
        cache_read_input_tokens=cached,
        reasoning_output_tokens=thoughts,
    )


def _path(request: RelayRequest) -> tuple[str, str]:
    if request.operation not in OPERATIONS:
        raise ValueError(f"Gemini has no operation '{request.operation}'.")
    if request.operation == "models.list":
        params = {name: request.params[name] for name in LIST_PARAMS if name in request.params}
        return "get", "models" + (f"?{urlencode(params)}" if params else "")
    model = (request.model or "").removeprefix("models/")
    if not MODEL_ID.fullmatch(model):
        raise ProviderRequestError(f"'{model}' is not a Gemini model name.", status_code=400)
    if request.operation == "models.get":
        return "get", f"models/{model}"
    suffix = "?alt=sse" if request.operation == "streamGenerateContent" else ""
    return "post", f"models/{model}:{request.operation}{suffix}"


def _version(request: RelayRequest) -> str:
    version = request.api_version or "v1beta"
    if version not in API_VERSIONS:
        raise ProviderRequestError(f"Unknown Gemini API version '{version}'.", status_code=404)
    return version


def _result(content: bytes) -> MessageResult:
    try:
        body = json.loads(content)
    except ValueError:
        raise ProviderError("Google answered with something other than JSON.") from None
    if not isinstance(body, dict):
        raise ProviderError("Google answered with something other than a JSON object.")
    return MessageResult(
        body=body,
        usage=usage_from_json(body.get("usageMetadata")),
        request_id=body.get("responseId"),
        content=content,
    )


class GeminiAdapter:
    name = "gemini"
    operations = OPERATIONS
    stream_operations = STREAM_OPERATIONS

    def validate(self, api_key: str) -> CheckResult:
        """Probe ``GET /v1beta/models?pageSize=1`` with the key: short timeout, one attempt."""
        options = _request_options(
            api_key, timeout_seconds=settings.LLM_KEY_CHECK_TIMEOUT_SECONDS, api_version="v1beta"
        )
        try:
            shared_client()._api_client.request("get", "models?pageSize=1", {}, options)
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            return failed_check(translate_error(exc), provider="Google")
        return CheckResult(CheckOutcome.VALID, reason="Accepted by Google.", status_code=200)

    async def asend(self, *, api_key: str, request: RelayRequest) -> MessageResult:
        """Send a non-streamed request; return Google's answer as it came."""
        if request.operation in STREAM_OPERATIONS:
            raise ValueError("Use astream for a streamed operation.")
        method, path = _path(request)
        options = _request_options(api_key, headers=request.headers, api_version=_version(request))
        try:
            response = await shared_client()._api_client.async_request(
                method, path, dict(request.body or {}), options
            )
        except Exception as exc:  # noqa: BLE001 - every failure is classified
            raise translate_error(exc) from None
        body = response.body
        return _result(body.encode() if isinstance(body, str) else body or b"")

    async def astream(self, *, api_key: str, request: RelayRequest) -> GeminiStream:
        """Open ``:streamGenerateContent?alt=sse``: a refusal raises here, before any byte is
        relayed, so it can be answered with its own status."""
        if request.operation not in STREAM_OPERATIONS:
            raise ValueError(f"Gemini does not stream '{request.operation}'.")
        method, path = _path(request)
        options = _request_options(api_key, headers=request.headers, api_version=_version(request))
        api_client = shared_client()._api_client
        try:
            http_request = api_client._build_request(
                method, path, dict(request.body or {}), options
            )
            response = await api_client._async_request(
                http_request=http_request, http_options=options, stream=True
            )
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc) from None
        return GeminiStream(response.response_stream)


# Before the final chunk counts the answer, its output is estimated from the text relayed
# (one token per three characters, as for the other providers, decision 021).
CHARACTERS_PER_OUTPUT_TOKEN = 3
EVENT_END = re.compile(rb"\r?\n\r?\n")


class GeminiStream:
    """Google's server-sent events, relayed byte for byte; see ``MessageStream``."""

    def __init__(self, response: Any):
        self._response = response  # an aiohttp or httpx2 response, as the SDK opened it
        self._pending = b""
        self._estimated_output = 0
        self._closed = False
        self.headers: dict[str, str] = {}
        self.summary = StreamSummary()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._relay()

    def _chunks(self) -> AsyncIterator[bytes]:
        content = getattr(self._response, "content", None)
        if content is not None and hasattr(content, "iter_any"):
            return content.iter_any()
        return self._response.aiter_bytes()

    async def _relay(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._chunks():
                self._pending += data
                *events, self._pending = EVENT_END.split(self._pending)
                for event in events:
                    self._read(event)
                yield data
            if self._pending.strip():
                self._read(self._pending)
        except Exception as exc:  # noqa: BLE001 - the connection broke or stalled mid-stream
            raise translate_error(exc) from None
        finally:
            await self.aclose()
        ended_early(self.summary, provider="Google")

    def _read(self, event: bytes) -> None:
        payload = event.partition(b"data: ")[2]
        try:
            data = json.loads(payload) if payload else None
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        if isinstance(data.get("error"), dict):
            error = data["error"]
            self.summary.error = translate_error(
                genai_errors.APIError(int(error.get("code") or 500), data)
            )
            return
        self.summary.request_id = data.get("responseId") or self.summary.request_id
        self.summary.model = data.get("modelVersion") or self.summary.model
        candidates = data.get("candidates") or []
        for candidate in candidates:
            for part in (candidate.get("content") or {}).get("parts") or []:
                text = part.get("text") if isinstance(part, dict) else None
                if text:
                    self._estimated_output += -(-len(text) // CHARACTERS_PER_OUTPUT_TOKEN)
            if candidate.get("finishReason"):
                self.summary.finished = True
        metadata = data.get("usageMetadata")
        usage = usage_from_json(metadata)
        if isinstance(metadata, dict) and "candidatesTokenCount" not in metadata:
            usage = Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.reasoning_output_tokens + self._estimated_output,
                cache_read_input_tokens=usage.cache_read_input_tokens,
                reasoning_output_tokens=usage.reasoning_output_tokens,
            )
        if isinstance(metadata, dict):
            self.summary.usage = usage
        # What the gateway meters the stream by as it goes (ai_gateway.streams): Google's
        # count so far where a chunk carries one, else the estimate of the text relayed.
        self.summary.output_tokens_seen = max(
            self._estimated_output, self.summary.usage.output_tokens
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._response, "aclose", None)
        if close is not None:
            await close()
        else:
            self._response.release()
