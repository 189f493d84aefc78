"""The token APIs pass Django's page middleware by without a thread hand-over, and still carry
the security headers; pages run every middleware hook as Django does (config.page_middleware,
docs/decisions/151)."""

from unittest import mock

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from django.test import AsyncClient

pytestmark = pytest.mark.django_db


def _served(method: str, path: str):
    """The answer of the ASGI application's handler, and the names of the sync functions it
    handed to a thread on the way."""
    handed_over: list[str] = []
    handler = SyncToAsync.thread_handler

    def recorded(self, *args, **kwargs):
        handed_over.append(getattr(self.func, "__qualname__", repr(self.func)))
        return handler(self, *args, **kwargs)

    async def run():
        return await getattr(AsyncClient(), method)(path)

    with mock.patch.object(SyncToAsync, "thread_handler", recorded):
        response = async_to_sync(run)()
    return response, handed_over


def _middleware_hooks(names: list[str]) -> list[str]:
    return [name for name in names if name.endswith(("process_request", "process_response"))]


def test_a_token_api_answer_runs_no_middleware_hook_in_a_thread():
    response, handed_over = _served("get", "/anthropic/v1/models")
    assert response.status_code == 401  # no token: the view's own refusal
    assert _middleware_hooks(handed_over) == []


def test_a_token_api_answer_still_carries_the_security_headers():
    response, _ = _served("get", "/anthropic/v1/models")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "Set-Cookie" not in response  # nothing of a session


def test_a_page_runs_every_middleware_hook_as_django_does():
    response, handed_over = _served("get", "/login/")
    assert response.status_code == 200
    hooks = _middleware_hooks(handed_over)
    for hook in (
        "SessionMiddleware.process_request",
        "CsrfViewMiddleware.process_response",
        "AuthenticationMiddleware.process_request",
        "XFrameOptionsMiddleware.process_response",
        "CSPMiddleware.process_response",
    ):
        assert any(name.endswith(hook) for name in hooks), (hook, hooks)
    assert response["X-Frame-Options"] == "DENY"
    assert "csrftoken" in response.cookies
