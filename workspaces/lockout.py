"""Login throttling with django-axes: who counts as one account, one client, and what a
locked-out login is told.

After ``LOGIN_FAILURE_LIMIT`` failures within ``LOGIN_FAILURE_WINDOW_MINUTES`` for one
account (whatever client) or for one client (whatever account), ``/login/`` and
``/admin/login/`` answer 429 with the time to try again, even for the right password.
Support clears a lockout in the admin (Axes → Access attempts). See docs/decisions/050.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone


def login_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """Return the account a login names, as the backend matches it (any case, no spaces)."""
    value = (credentials or {}).get("username")
    if value is None:
        value = request.POST.get("username")
    return value.strip().lower() if isinstance(value, str) else None


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's address: the proxy's ``X-Forwarded-For`` hop behind a TLS proxy.

    Only the last hop is the proxy's own word; the ones before it are the client's, and a
    client could write any address there to reset its count.
    """
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.META.get("REMOTE_ADDR")


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """Answer a locked-out login with 429, ``Retry-After`` and when to try again."""
    window = timedelta(minutes=settings.LOGIN_FAILURE_WINDOW_MINUTES)
    # Each refused try during a lockout restarts it (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_
    # LOCKOUT), so the lockout ends one window after this request.
    retry_at = timezone.now() + window
    minutes = settings.LOGIN_FAILURE_WINDOW_MINUTES
    body = render_to_string(
        "registration/locked_out.html",
        {
            "retry_at": retry_at,
            "minutes": minutes,
            "failure_limit": settings.LOGIN_FAILURE_LIMIT,
        },
        request=request,
    )
    response = HttpResponse(body, status=429)
    response["Retry-After"] = str(int(window.total_seconds()))
    response["Cache-Control"] = "no-store"
    return response
