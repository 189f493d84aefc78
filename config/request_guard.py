"""The ASGI application's first check on a request: its body's size and, on the APIs, that
it carries credentials at all — before a byte of the body is read.

Django's ASGI handler reads a whole body (spooling it to disk) before any middleware or view
runs, so a limit checked there comes too late: an anonymous client could make a worker
receive gigabytes before its 401. Here:

- a declared ``Content-Length`` over the route's limit is answered 413 at once, unread;
- a body without a declared length (chunked) is cut where it passes the limit, and 413;
- an API request without any credentials is answered 401 at once, unread;
- on ``/anthropic/``, ``/openai/`` and ``/gemini/``, the token is looked up (the views' own
  lookup, in a short database section) and a wrong or revoked one is refused at once,
  unread, in that provider's shape; the token found goes on in the scope
  (``ai_gateway.api.EARLY_TOKEN``), so the view does not look it up again;

and the answer closes the connection, so the unread body goes nowhere. API routes answer in
their provider's error shape (``/openai`` OpenAI's, ``/gemini`` Google's, the others
Anthropic's envelope) with ``x-should-retry: false`` and a ``request-id``; a missing token is
refused as that provider's view refuses a missing key.
"""

from __future__ import annotations

import json

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.http import QueryDict

from ai_gateway.provider_errors import gemini_error_body, openai_error_body
from ai_gateway.request_ids import new_request_id, request_id_set

API_PREFIXES = ("/anthropic/", "/api/", "/openai/", "/gemini/")


def _limit(path: str) -> int:
    if path.startswith(API_PREFIXES):
        return settings.AI_REQUEST_MAX_BODY_BYTES
    # Pages take forms only; Django refuses a larger form body anyway.
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _bodiless(scope) -> bool:
    """A GET, HEAD or OPTIONS without a body: nothing to check. One that declares a body
    (it may: RFC 9110 §9.3.1) is held to the limits like a POST."""
    if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
        return False
    return all(
        name not in (b"content-length", b"transfer-encoding") or value in (b"0", b"")
        for name, value in scope["headers"]
    )


def _too_large_message(limit: int) -> str:
    return (
        f"The request body is too large (at most {limit:,} bytes); shorten the messages or "
        "send large documents by reference."
    )


NO_SESSION = "Log in first: this API uses your session."


class RequestGuard:
    """Wrap an ASGI application with the checks above."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or _bodiless(scope):
            return await self.app(scope, receive, send)
        # The request's thread context, which Django's handler would open itself: the token
        # lookup below and the view's database sections then share one thread per request
        # (each context of its own costs a thread, and another to join it when it ends).
        async with ThreadSensitiveContext():
            return await self._checked(scope, receive, send)

    async def _checked(self, scope, receive, send):
        path = scope["path"]
        limit = _limit(path)
        headers = dict(scope["headers"])
        checked = _token_check(path)
        missing = None
        if checked is not None:
            # A token that is there is checked first: a wrong or revoked one is told so,
            # whatever the body; none at all is refused after the size.
            token_of, render = checked
            names = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in scope["headers"]
            }
            params = QueryDict(scope.get("query_string", b"").decode("latin-1"))
            if _token_present(path, names, params):
                found = await _looked_up(token_of, names, params)
                if not isinstance(found, BaseException):
                    from ai_gateway.api import EARLY_TOKEN

                    scope = {**scope, EARLY_TOKEN: found}
                else:
                    return await _refuse_rendered(send, render, found)
            else:
                missing = render
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = limit + 1
            if size > limit:
                message = _too_large_message(limit)
                return await _refuse(send, path, 413, "request_too_large", message)
        if missing is not None:
            # No token at all: the view's own refusal, which needs no database.
            return await _refuse_rendered(send, missing, _looked_up_now(checked[0], names, params))
        refusal = _missing_credentials(path, headers)
        if refusal:
            return await _refuse(send, path, 401, "authentication_error", refusal)
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


def _missing_credentials(path: str, headers: dict[bytes, bytes]) -> str:
    """Why an ``/api/`` request with a body is refused before it is read, or ''."""
    if path.startswith("/api/"):
        cookie = headers.get(b"cookie", b"")
        if settings.SESSION_COOKIE_NAME.encode() + b"=" not in cookie:
            return NO_SESSION
    return ""


def _api_error(path: str, status: int, error_type: str, message: str) -> dict:
    """The refusal in the error shape of the provider whose API the path is."""
    if path.startswith("/openai/"):
        return openai_error_body(status, error_type, message)
    if path.startswith("/gemini/"):
        return gemini_error_body(status, error_type, message)
    return {"type": "error", "error": {"type": error_type, "message": message}}


# Where each provider API takes a token (its view's ``token_of_headers`` reads the same).
TOKEN_PLACES = {
    "/anthropic/": ("x-api-key", "authorization"),
    "/openai/": ("authorization",),
    "/gemini/": ("x-goog-api-key",),
}


def _token_present(path: str, names: dict[str, str], params: QueryDict) -> bool:
    for prefix, places in TOKEN_PLACES.items():
        if path.startswith(prefix):
            if any(names.get(place, "").strip() for place in places):
                return True
            return prefix == "/gemini/" and bool(params.get("key"))
    return False


async def _looked_up(token_of, names, params):
    """The live token, or the GatewayError refusing it, from the view's own lookup in a
    short database section."""
    from ai_gateway.database import database_section
    from ai_gateway.errors import GatewayError

    try:
        return await database_section(token_of)(names, params)
    except GatewayError as error:
        return error


def _looked_up_now(token_of, names, params):
    """The view's refusal of a request without a token (raised before any query)."""
    from ai_gateway.errors import GatewayError

    try:
        token_of(names, params)
    except GatewayError as error:
        return error
    raise AssertionError("a request without a token was not refused")


def _token_check(path: str):
    """(the provider's token lookup, its error renderer) for a provider API path, or None."""
    if path.startswith("/anthropic/"):
        from ai_gateway.anthropic_api import token_of_headers
        from ai_gateway.api import error_response

        return token_of_headers, error_response
    if path.startswith("/openai/"):
        from ai_gateway.openai_api import token_of_headers
        from ai_gateway.provider_errors import openai_error_response

        return token_of_headers, openai_error_response
    if path.startswith("/gemini/"):
        from ai_gateway.gemini_api import token_of_headers
        from ai_gateway.provider_errors import gemini_error_response

        return token_of_headers, gemini_error_response
    return None


async def _refuse_rendered(send, render, error) -> None:
    """Send the view's own error answer for ``error``, closing the unread connection."""
    request_id = new_request_id()
    with request_id_set(request_id):
        response = render(error)
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.items()
    ]
    present = {name for name, _ in headers}
    for name, value in ((b"request-id", request_id.encode()), (b"cache-control", b"no-store")):
        if name not in present:
            headers.append((name, value))
    headers += [
        (b"content-length", str(len(response.content)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


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
