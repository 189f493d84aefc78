"""Django's middleware, without thread hand-overs on the token APIs.

Under the ASGI server each hook of a ``MiddlewareMixin`` middleware runs in the request's
thread (Django calls it with ``sync_to_async``): a hand-over and back, fourteen a request
with these eight, about 2 ms of a credit-paid stream's CPU at a few hundred streams at once
(docs/decisions/151). A request to a token API (``/anthropic/``, ``/openai/``, ``/gemini/``)
is authenticated by its API token, carries no session, is exempt from CSRF, and is answered
with JSON or an event stream. For such a request:

- ``PassedBy``: sessions, CSRF, authentication, messages and ``APPEND_SLASH`` serve the pages
  and change nothing in its answer; it passes them by.
- ``OnTheLoop``: the security headers (``X-Content-Type-Options``, HSTS, the referrer
  policy, ``X-Frame-Options``, the Content-Security-Policy) are still set, by the same hooks,
  run on the event loop: they read settings and write headers, no I/O.

Every other request (pages, the admin, the session API under ``/api/``) runs each middleware
exactly as Django does.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware as _CSPMiddleware
from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware as _XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware as _CommonMiddleware
from django.middleware.csrf import CsrfViewMiddleware as _CsrfViewMiddleware
from django.middleware.security import SecurityMiddleware as _SecurityMiddleware

from config.request_guard import TOKEN_PLACES

# The provider APIs a workspace's API token authenticates (the request guard's own list).
TOKEN_API_PREFIXES = tuple(TOKEN_PLACES)


def _token_api(request: HttpRequest) -> bool:
    return request.path.startswith(TOKEN_API_PREFIXES)


class PassedBy:
    """Mixed in before a ``MiddlewareMixin`` middleware: a token API request passes it by."""

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if _token_api(request):
            return await self.get_response(request)
        return await super().__acall__(request)


class OnTheLoop:
    """Mixed in before a ``MiddlewareMixin`` middleware whose hooks do no I/O: on a token API
    request they run on the event loop, as ``MiddlewareMixin.__acall__`` runs them in a
    thread."""

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if not _token_api(request):
            return await super().__acall__(request)
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


class SecurityMiddleware(OnTheLoop, _SecurityMiddleware):
    pass


class SessionMiddleware(PassedBy, _SessionMiddleware):
    pass


class CommonMiddleware(PassedBy, _CommonMiddleware):
    pass


class CsrfViewMiddleware(PassedBy, _CsrfViewMiddleware):
    # Its process_view is called by Django apart, for every view; the token APIs' views are
    # exempt from it.
    pass


class AuthenticationMiddleware(PassedBy, _AuthenticationMiddleware):
    pass


class MessageMiddleware(PassedBy, _MessageMiddleware):
    pass


class XFrameOptionsMiddleware(OnTheLoop, _XFrameOptionsMiddleware):
    pass


class CSPMiddleware(OnTheLoop, _CSPMiddleware):
    pass
