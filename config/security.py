"""Response headers that say what may keep a copy of an answer."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import sync_and_async_middleware

# Programs' answers (AI output, usage, errors) are never stored by a browser or a proxy.
from config.request_guard import API_PREFIXES


def _keep_no_copy(request: HttpRequest, response: HttpResponse) -> None:
    # A signed-in request carries the session cookie; reading request.user here would cost
    # a query on requests that never needed the user (the token API).
    if request.path.startswith(API_PREFIXES) or settings.SESSION_COOKIE_NAME in request.COOKIES:
        add_never_cache_headers(response)


@sync_and_async_middleware
def no_store_middleware(get_response):
    """``Cache-Control: no-store`` on every page a signed-in user sees and every API answer.

    A signed-in page holds a workspace's data (masked keys, usage, audit trail); the back
    button of a shared computer or a caching proxy must not bring it back after logout.
    Async-capable, so that under the ASGI server it adds no thread hop to a request.
    """
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            response = await get_response(request)
            _keep_no_copy(request, response)
            return response

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            response = get_response(request)
            _keep_no_copy(request, response)
            return response

    return middleware
