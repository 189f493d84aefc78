"""The gateway's own request ids: every answer carries a ``request-id`` header, as every
answer of Anthropic's API does ("Every API response includes a unique request-id header",
docs.claude.com/en/api/errors, "Request id"). An answer relayed from the provider keeps the
provider's; one the gateway made itself gets ``req_gw_…``, which its error message quotes
and its usage row stores, so a user can give it to support.
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

_current: contextvars.ContextVar[str] = contextvars.ContextVar("gateway_request_id", default="")


def new_request_id() -> str:
    """Return a fresh gateway request id."""
    return f"req_gw_{secrets.token_hex(12)}"


@contextlib.contextmanager
def request_id_set(request_id: str):
    """Make ``request_id`` the current one inside the block (for answers made outside
    Django's middleware, by config.request_guard)."""
    token = _current.set(request_id)
    try:
        yield
    finally:
        _current.reset(token)


def current_request_id() -> str:
    """The gateway request id of the request being served, or '' outside one."""
    return _current.get()


def _answered(response: HttpResponse, request_id: str) -> HttpResponse:
    if "request-id" not in response:
        response["request-id"] = request_id
    return response


@sync_and_async_middleware
def request_id_middleware(get_response):
    """Give each request a gateway request id; answer it in ``request-id`` unless the
    provider's own is relayed."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            request_id = new_request_id()
            token = _current.set(request_id)
            try:
                return _answered(await get_response(request), request_id)
            finally:
                _current.reset(token)

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            request_id = new_request_id()
            token = _current.set(request_id)
            try:
                return _answered(get_response(request), request_id)
            finally:
                _current.reset(token)

    return middleware
