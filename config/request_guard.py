"""The ASGI application's first check on a request: its body's size and, on the APIs, that
it carries credentials at all — before a byte of the body is read.

Django's ASGI handler reads a whole body (spooling it to disk) before any middleware or view
runs, so a limit checked there comes too late: an anonymous client could make a worker
receive gigabytes before its 401. Here:

- a declared ``Content-Length`` over the route's limit is answered 413 at once, unread;
- a body without a declared length (chunked) is cut where it passes the limit, and 413;
- an API request without any credentials is answered 401 at once, unread;

and the answer closes the connection, so the unread body goes nowhere. API routes answer in
their provider's error shape (``/openai`` OpenAI's, ``/gemini`` Google's, the others
Anthropic's envelope) with ``x-should-retry: false`` and a ``request-id``; a missing token is
refused as each provider refuses a missing key (OpenAI 401, Google 403 PERMISSION_DENIED).
"""

from __future__ import annotations

import json

from django.conf import settings

from ai_gateway.provider_errors import gemini_error_body, openai_error_body
from ai_gateway.request_ids import new_request_id

API_PREFIXES = ("/anthropic/", "/api/", "/openai/", "/gemini/")
TOKEN_HEADERS = (b"x-api-key", b"authorization")


def _limit(path: str) -> int:
    if path.startswith(API_PREFIXES):
        return settings.AI_REQUEST_MAX_BODY_BYTES
    # Pages take forms only; Django refuses a larger form body anyway.
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _too_large_message(limit: int) -> str:
    return (
        f"The request body is too large (at most {limit:,} bytes); shorten the messages or "
        "send large documents by reference."
    )


NO_CREDENTIALS = (
    "Send a workspace API token in the x-api-key header (or Authorization: Bearer). "
    "Workspace admins create tokens at Workspace Settings → API tokens."
)
NO_SESSION = "Log in first: this API uses your session."
NO_OPENAI_TOKEN = (
    "Send a workspace API token as Authorization: Bearer <token> (the OpenAI SDK's api_key). "
    "Workspace admins create tokens at Workspace Settings → API tokens."
)
NO_GEMINI_TOKEN = (
    "Send a workspace API token in the x-goog-api-key header (the google-genai SDK's "
    "api_key). Workspace admins create tokens at Workspace Settings → API tokens."
)


class RequestGuard:
    """Wrap an ASGI application with the checks above."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        path = scope["path"]
        limit = _limit(path)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = limit + 1
            if size > limit:
                message = _too_large_message(limit)
                return await _refuse(send, path, 413, "request_too_large", message)
        refusal = _missing_credentials(path, headers, scope.get("query_string", b""))
        if refusal:
            return await _refuse(send, path, *refusal)
        if declared is not None:
            # Uvicorn gives the app no more than the declared length.
            return await self.app(scope, receive, send)
        return await self._chunked(scope, receive, send, limit)

    async def _chunked(self, scope, receive, send, limit: int):
        received = 0
        cut = False
        started = False

        async def counted_receive():
            nonlocal received, cut
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django stops reading and drops the request on a disconnect; the 413
                    # below is the answer.
                    cut = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, watched_send)
        if cut and not started:
            await _refuse(send, scope["path"], 413, "request_too_large", _too_large_message(limit))


def _missing_credentials(
    path: str, headers: dict[bytes, bytes], query: bytes
) -> tuple[int, str, str] | None:
    """Why an API request with a body is refused before it is read (status, type, message),
    or None."""
    if path.startswith("/anthropic/"):
        if not any(headers.get(name, b"").strip() for name in TOKEN_HEADERS):
            return 401, "authentication_error", NO_CREDENTIALS
    elif path.startswith("/openai/"):
        if not headers.get(b"authorization", b"").strip():
            return 401, "missing_api_key", NO_OPENAI_TOKEN
    elif path.startswith("/gemini/"):
        in_query = any(part.startswith(b"key=") for part in query.split(b"&"))
        if not headers.get(b"x-goog-api-key", b"").strip() and not in_query:
            return 403, "permission_denied", NO_GEMINI_TOKEN
    elif path.startswith("/api/"):
        cookie = headers.get(b"cookie", b"")
        if settings.SESSION_COOKIE_NAME.encode() + b"=" not in cookie:
            return 401, "authentication_error", NO_SESSION
    return None


def _api_error(path: str, status: int, error_type: str, message: str) -> dict:
    """The refusal in the error shape of the provider whose API the path is."""
    if path.startswith("/openai/"):
        return openai_error_body(status, error_type, message)
    if path.startswith("/gemini/"):
        return gemini_error_body(status, error_type, message)
    return {"type": "error", "error": {"type": error_type, "message": message}}


async def _refuse(send, path: str, status: int, error_type: str, message: str) -> None:
    request_id = new_request_id()
    if path.startswith(API_PREFIXES):
        body = json.dumps(
            _api_error(path, status, error_type, f"{message} (request id {request_id})")
        ).encode()
        content_type = b"application/json"
    else:
        body = message.encode()
        content_type = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"request-id", request_id.encode()),
                (b"x-should-retry", b"false"),
                (b"cache-control", b"no-store"),
                # The body was not read: the connection cannot carry another request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
