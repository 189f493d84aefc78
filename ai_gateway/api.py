"""What the gateway's HTTP APIs share: reading a Messages request, answering in
Anthropic's error envelope, and relaying an answer or a stream."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

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
    if error.permanent and "x-should-retry" not in error.retry_headers:
        response["x-should-retry"] = "false"
    logger.info(
        "API answered %s %s (request-id %s)", error.http_status, error.error_type, request_id
    )
    return response


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


def read_json_body(request: HttpRequest) -> dict[str, Any]:
    """Return the request's JSON object, or raise a 400/413 saying what is wrong with it.

    The gateway checks only that the body is sane JSON it can pass on and store counts of:
    an object, within the size limit, without lone surrogates or NUL characters (which no
    provider or database takes); the provider judges the fields.
    """
    limit = settings.AI_REQUEST_MAX_BODY_BYTES
    too_large = refused(
        413,
        "request_too_large",
        f"The request body is too large (at most {limit:,} bytes); shorten the messages or "
        "send large documents by reference.",
    )
    try:
        declared = int(request.headers.get("content-length") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    try:
        raw = request.read(limit + 1)
    except RequestDataTooBig:
        raise too_large from None
    if len(raw) > limit:
        raise too_large
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise refused(
            400,
            "invalid_request_error",
            "The body must be JSON in Anthropic's Messages form: "
            '{"model": ..., "max_tokens": ..., "messages": [...]}.',
        ) from None
    if not isinstance(body, dict):
        raise refused(400, "invalid_request_error", "The body must be a JSON object.")
    problem = _unsendable_text(body)
    if problem:
        raise refused(400, "invalid_request_error", problem)
    return body


def _unsendable_text(value: Any) -> str:
    """Say what makes a JSON value impossible to pass on, or return ''."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "The request contains a NUL character (\\u0000) in a string; remove it."
            if _LONE_SURROGATE.search(item):
                return (
                    "The request contains an unpaired UTF-16 surrogate (such as \\ud800) in a "
                    "string; send valid Unicode text."
                )
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
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
