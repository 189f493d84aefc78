"""Errors in OpenAI's and Google's own shapes, so their official SDKs raise their own
exception classes for the gateway's refusals too (docs/decisions/147).

- OpenAI: ``{"error": {"message", "type", "param", "code"}}``
  (https://platform.openai.com/docs/guides/error-codes).
- Google: ``google.rpc.Status`` as JSON, ``{"error": {"code", "message", "status"}}``
  (https://cloud.google.com/apis/design/errors), with the canonical status names.

A stream the gateway ends early (credits ran out, the stream cap, the provider broke off)
ends with an error event in that provider's stream shape, as each provider sends an error
once its stream has begun: OpenAI's chat completions stream a ``data:`` line holding
``{"error": {...}}`` and no event name (the openai SDK raises ``APIError`` for any streamed
event whose data has an ``error`` key;
https://community.openai.com/t/what-would-a-stream-for-chat-completions-look-like-if-an-error-occurs-while-streaming/373705);
OpenAI's Responses API its own ``error`` event, ``{"type": "error", "code", "message",
"param", "sequence_number"}`` (``ResponseErrorEvent``,
https://platform.openai.com/docs/api-reference/responses-streaming/error), which the SDK
yields as a typed event rather than raising; Google a ``data:`` line holding the
``google.rpc.Status`` of its error format
(https://ai.google.dev/gemini-api/docs/generate-content/api-errors; the google-genai SDK
raises its ``APIError`` for a streamed chunk that is ``{"error": ...}``).
"""

from __future__ import annotations

import json
import logging

from django.http import JsonResponse

from .errors import GatewayError, ProviderFailedError
from .request_ids import current_request_id

logger = logging.getLogger(__name__)

# google.rpc.Code names by HTTP status (https://cloud.google.com/apis/design/errors#handling_errors).
GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "RESOURCE_EXHAUSTED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "FAILED_PRECONDITION",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# OpenAI's error types by status; the gateway's own error type goes in ``code``.
OPENAI_TYPES = {401: "invalid_request_error", 429: "rate_limit_error"}


def openai_error_body(status: int, code: str, message: str) -> dict:
    """OpenAI's error object; ``code`` is the provider's code or the gateway's type."""
    error_type = OPENAI_TYPES.get(status) or (
        "server_error" if status >= 500 else "invalid_request_error"
    )
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def gemini_error_body(status: int, code: str, message: str) -> dict:
    """Google's ``google.rpc.Status``; the gateway's type as an ``ErrorInfo`` reason."""
    return {
        "error": {
            "code": status,
            "message": message,
            "status": GOOGLE_STATUSES.get(status, "UNKNOWN"),
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": code.upper(),
                    "domain": "gateway",
                }
            ],
        }
    }


def _openai_error(error: GatewayError, message: str) -> dict:
    return openai_error_body(error.http_status, _code(error), message)


def _gemini_error(error: GatewayError, message: str) -> dict:
    return gemini_error_body(error.http_status, _code(error), message)


def _data_event(body: dict, end: str) -> bytes:
    return f"data: {json.dumps(body, separators=(',', ':'))}{end}".encode()


def openai_stream_error(error: GatewayError, stream: object = None) -> bytes:
    """The notice ending an ``/openai`` chat completions stream early, as OpenAI sends a
    mid-stream error."""
    return _data_event(_openai_error(error, _message(error)[0]), "\n\n")


def responses_stream_error(error: GatewayError, stream: object = None) -> bytes:
    """The notice ending an ``/openai/v1/responses`` stream early: the Responses API's
    ``error`` event, numbered after the last event the provider sent."""
    event = {
        "type": "error",
        "code": _code(error),
        "message": _message(error)[0],
        "param": None,
        "sequence_number": getattr(stream, "next_sequence_number", 0),
    }
    return b"event: error\n" + _data_event(event, "\n\n")


def gemini_stream_error(error: GatewayError, stream: object = None) -> bytes:
    """The notice ending a ``/gemini`` stream early, as Google sends one (its streams end
    events with CRLF CRLF)."""
    return _data_event(_gemini_error(error, _message(error)[0]), "\r\n\r\n")


def _message(error: GatewayError) -> tuple[str, str]:
    request_id = error.request_id or current_request_id()
    message = error.message
    if request_id and not error.request_id:
        message = f"{message} (request id {request_id})"
    return message, request_id


def _code(error: GatewayError) -> str:
    """The provider's own code for an error it made and the gateway passes on; the gateway's
    type for its own (an invalid key is ``llm_key_invalid`` whatever the provider said)."""
    if (
        isinstance(error, ProviderFailedError)
        and error.provider_error_type
        and not error.permanent  # the platform key refused: the gateway's own refusal
    ):
        return error.provider_error_type
    return error.error_type


def _finish(response: JsonResponse, error: GatewayError, request_id: str) -> JsonResponse:
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


def openai_error_response(error: GatewayError) -> JsonResponse:
    """The error in OpenAI's shape; ``code`` is the provider's code or the gateway's type."""
    message, request_id = _message(error)
    response = JsonResponse(_openai_error(error, message), status=error.http_status)
    if request_id:
        response["x-request-id"] = request_id
    return _finish(response, error, request_id)


def gemini_error_response(error: GatewayError) -> JsonResponse:
    """The error as Google's ``google.rpc.Status``; the gateway's type in an ``ErrorInfo``."""
    message, request_id = _message(error)
    response = JsonResponse(_gemini_error(error, message), status=error.http_status)
    return _finish(response, error, request_id)
