"""What the gateway's HTTP APIs share: reading a Messages request, answering in
Anthropic's error envelope, and relaying an answer or a stream."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from .errors import GatewayError, RefusedError
from .request_ids import current_request_id
from .services import GatewayStream

logger = logging.getLogger(__name__)

# The client's API headers that go on to the provider; credentials never do.
PASSED_ON_HEADERS = ("anthropic-version", "anthropic-beta")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def error_response(error: GatewayError) -> JsonResponse:
    """Anthropic's error envelope, so the official SDKs raise their own exception classes.

    A provider's error keeps its status, type, message, ``request-id`` and retry advice
    (``retry-after``, ``x-should-retry``) as the provider sent them. An error the gateway
    made carries the gateway's own request id, quoted in its message, and, where retrying
    cannot help, ``x-should-retry: false``: the SDKs obey it before their status rules
    (they would otherwise retry a 409 and every 5xx).
    """
    request_id = error.request_id or current_request_id()
    message = error.message
    if request_id and not error.request_id:
        message = f"{message} (request id {request_id})"
    response = JsonResponse(
        {"type": "error", "error": {"type": error.error_type, "message": message}},
        status=error.http_status,
    )
    if request_id:
        response["request-id"] = request_id
    for name, value in error.retry_headers.items():
        response[name] = value
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None and "retry-after" not in error.retry_headers:
        response["retry-after"] = str(retry_after)
    if error.permanent and "x-should-retry" not in error.retry_headers:
        response["x-should-retry"] = "false"
    logger.info(
        "API answered %s %s (request-id %s)", error.http_status, error.error_type, request_id
    )
    return response


# The ASGI scope key under which config.request_guard leaves the API token it looked up
# before the body was read, so the view does not look it up again.
EARLY_TOKEN = "gateway.api_token"


def early_token(request: HttpRequest):
    """The API token the request guard already found for this request, or None."""
    scope = getattr(request, "scope", None)
    return scope.get(EARLY_TOKEN) if isinstance(scope, dict) else None


def refused(status: int, error_type: str, message: str) -> RefusedError:
    return RefusedError(message, error_type=error_type, http_status=status)


def passed_on_headers(request: HttpRequest) -> dict[str, str]:
    return {name: request.headers[name] for name in PASSED_ON_HEADERS if name in request.headers}


def _too_large() -> RefusedError:
    limit = settings.AI_REQUEST_MAX_BODY_BYTES
    return refused(
        413,
        "request_too_large",
        f"The request body is too large (at most {limit:,} bytes); shorten the messages or "
        "send large documents by reference.",
    )


def read_raw_body(request: HttpRequest) -> bytes:
    """Return the request's body as it came, or raise a 413 over the limit."""
    limit = settings.AI_REQUEST_MAX_BODY_BYTES
    try:
        raw = request.read(limit + 1)
    except RequestDataTooBig:
        raise _too_large() from None
    if len(raw) > limit:
        raise _too_large()
    return raw


# What a body that is not JSON is told to look like, by API.
MESSAGES_FORM = (
    "The body must be JSON in Anthropic's Messages form: "
    '{"model": ..., "max_tokens": ..., "messages": [...]}.'
)


# A body at most this large is parsed on the event loop (tens of microseconds): the hop to a
# thread and back costs more CPU than the parse.
INLINE_JSON_BYTES = 64 * 1024


async def aread_json_body(request: HttpRequest, *, form: str = MESSAGES_FORM) -> dict[str, Any]:
    """``read_json_body``; a large body (or one of unknown length) in a thread of its own,
    off the event loop (it takes a while to parse) and off the database sections' thread."""
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) <= INLINE_JSON_BYTES:
        return read_json_body(request, form=form)
    return await sync_to_async(read_json_body, thread_sensitive=False)(request, form=form)


def read_json_body(request: HttpRequest, *, form: str = MESSAGES_FORM) -> dict[str, Any]:
    """Return the request's JSON object, or raise a 400/413 saying what is wrong with it.

    The gateway checks only that the body is sane JSON it can pass on and store counts of:
    an object, within the size limit and the structural limits (elements, depth), without
    lone surrogates or NUL characters (which no provider or database takes); the provider
    judges the fields.
    """
    raw = read_raw_body(request)
    problem = _too_many_elements(raw)
    if problem:
        raise refused(400, "invalid_request_error", problem)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise refused(400, "invalid_request_error", form) from None
    if not isinstance(body, dict):
        raise refused(400, "invalid_request_error", "The body must be a JSON object.")
    problem = _unsendable_text(body)
    if problem:
        raise refused(400, "invalid_request_error", problem)
    return body


# A JSON string, escapes included (the unrolled form: linear, no backtracking).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def _too_many_elements(raw: bytes) -> str:
    """Say whether the body holds more JSON values than AI_REQUEST_MAX_JSON_ELEMENTS, before
    parsing it: parsed, each costs some 50-100 bytes of memory (a 32 MB body of empty lists
    took a worker past 2 GB). Every element but the first of an array or object follows a
    ',' and every container opens with '[' or '{', so their count bounds the elements; only
    when that bound is over the limit are the strings (whose commas do not count) taken out
    for the exact count."""
    limit = settings.AI_REQUEST_MAX_JSON_ELEMENTS
    if raw.count(b",") + raw.count(b"[") + raw.count(b"{") <= limit:
        return ""
    skeleton = _JSON_STRING.sub(b'""', raw)
    if skeleton.count(b",") + skeleton.count(b"[") + skeleton.count(b"{") <= limit:
        return ""
    return (
        f"The request holds more than {limit:,} JSON values (AI_REQUEST_MAX_JSON_ELEMENTS); "
        "send fewer or larger blocks."
    )


def _unsendable_text(value: Any) -> str:
    """Say what makes a JSON value impossible to pass on (or nested deeper than
    AI_REQUEST_MAX_JSON_DEPTH), or return ''."""
    max_depth = settings.AI_REQUEST_MAX_JSON_DEPTH
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "The request contains a NUL character (\\u0000) in a string; remove it."
            if _LONE_SURROGATE.search(item):
                return (
                    "The request contains an unpaired UTF-16 surrogate (such as \\ud800) in a "
                    "string; send valid Unicode text."
                )
        elif isinstance(item, dict | list):
            if depth > max_depth:
                return (
                    f"The request is nested more than {max_depth} levels deep "
                    "(AI_REQUEST_MAX_JSON_DEPTH)."
                )
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)
    return ""


def stream_response(stream: GatewayStream) -> StreamingHttpResponse:
    response = relay_headers(
        StreamingHttpResponse(stream, content_type="text/event-stream"), stream.headers
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response["X-Credential-Source"] = str(stream.credential_source)
    return response


def relay_headers(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for name, value in headers.items():
        response[name] = value
    return response
