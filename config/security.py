"""Response headers that say what may keep a copy of an answer."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

# Programs' answers: AI output, usage, errors. Never stored by a browser or a proxy.
API_PREFIXES = ("/api/", "/anthropic/")


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every page a signed-in user sees and every API answer.

    A signed-in page holds a workspace's data (masked keys, usage, audit trail); the back
    button of a shared computer or a caching proxy must not bring it back after logout.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if request.path.startswith(API_PREFIXES) or (user is not None and user.is_authenticated):
            add_never_cache_headers(response)
        return response
