"""Request-rate and concurrency limits per workspace API token and per workspace (SPEC §17),
on every endpoint under ``/anthropic`` (count_tokens and models included), ``/openai`` and
``/gemini``, and per member and per workspace on the Try AI page's session API.

Counters live in Django's cache: shared by every worker process when it is Redis (production:
``CACHE_URL``, else the broker's Redis), per process with local memory (decision 126). A
request over a limit is answered 429 ``rate_limit_error`` with ``retry-after``, as Anthropic
answers its own limits (docs.claude.com/en/api/rate-limits).

The rate is a fixed one-minute window. A concurrency slot is held until the answer is sent
(a stream's last byte); its counter expires ``SLOT_TTL_SECONDS`` after the last request
took one, so slots a killed process never gave back do not stay taken forever.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from redis import RedisError

from .database import database_section
from .errors import GatewayError, RefusedError

logger = logging.getLogger(__name__)

SLOT_TTL_SECONDS = 3600
WINDOW_SECONDS = 60


@dataclass
class Slots:
    """The concurrency slots one request holds; ``release()`` gives them back once."""

    keys: list[str] = field(default_factory=list)

    def release(self) -> None:
        keys, self.keys = self.keys, []
        for key in keys:
            # Expired meanwhile, or the cache is unreachable: its counter lapses with its TTL.
            with contextlib.suppress(ValueError, RedisError):
                cache.decr(key)


# Who a limit counts, as its refusal names them, and the settings of its rate and concurrency.
SUBJECTS = {
    "token": ("This API token has", "AI_API_TOKEN"),
    # A member's session on the Try AI page counts as one client, like a token (decision 127).
    "member": ("You have", "AI_API_TOKEN"),
    "workspace": ("This workspace has", "AI_API_WORKSPACE"),
}


def api_request_admit(*, token) -> Slots:
    """Count an API request against its token's and workspace's limits and take its
    concurrency slots; raise a 429 RefusedError if any limit is reached."""
    return _admit(
        [("token", f"token:{token.pk}"), ("workspace", f"workspace:{token.workspace_id}")]
    )


def session_request_admit(*, workspace_id: int, user_id: int) -> Slots:
    """Count a request of a member's session (the Try AI page) against the member's and the
    workspace's limits, as ``api_request_admit`` counts a token's."""
    return _admit(
        [("member", f"member:{workspace_id}:{user_id}"), ("workspace", f"workspace:{workspace_id}")]
    )


def _admit(scopes: list[tuple[str, str]]) -> Slots:
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    slots = Slots()
    try:
        for subject, scope in scopes:
            _count_rate(subject, scope, now, window)
            _take_slot(subject, scope, slots)
    except RedisError as error:
        # The limits protect the service; an unreachable cache must not stop it (decision 126).
        logger.error("API limits not counted: the cache is unreachable (%s)", error)
        slots.release()
        return Slots()
    except BaseException:
        slots.release()
        raise
    return slots


def _count_rate(subject: str, scope: str, now: float, window: int) -> None:
    who, setting = SUBJECTS[subject]
    per_minute = getattr(settings, f"{setting}_REQUESTS_PER_MINUTE")
    if per_minute <= 0:
        return
    key = f"ai-api-rate:{scope}:{window}"
    cache.add(key, 0, WINDOW_SECONDS * 2)
    if cache.incr(key) > per_minute:
        wait = int((window + 1) * WINDOW_SECONDS - now) + 1
        raise _refused(
            f"{who} sent more than {per_minute} requests this minute "
            f"({setting}_REQUESTS_PER_MINUTE); try again in {wait} s.",
            wait,
        )


def _take_slot(subject: str, scope: str, slots: Slots) -> None:
    who, setting = SUBJECTS[subject]
    concurrent = getattr(settings, f"{setting}_MAX_CONCURRENT_REQUESTS")
    if concurrent <= 0:
        return
    key = f"ai-api-concurrent:{scope}"
    cache.add(key, 0, SLOT_TTL_SECONDS)
    cache.touch(key, SLOT_TTL_SECONDS)
    slots.keys.append(key)
    if cache.incr(key) > concurrent:
        raise _refused(
            f"{who} {concurrent} requests in progress already "
            f"({setting}_MAX_CONCURRENT_REQUESTS); try again when one has finished.",
            1,
        )


def token_admitted(
    token_of: Callable[[HttpRequest], object],
    error_response: Callable[[GatewayError], HttpResponse],
):
    """Decorate an API view ``view(request, token, ...)`` of one provider's API: the request's
    token (``token_of``, which raises that API's 401) is looked up and counted against the
    token's and its workspace's limits in one database section, before the view runs; a
    refusal is answered by ``error_response`` in that provider's shape. The concurrency slots
    are given back when the answer is sent (a stream's when it ends, however it ends)."""

    def admit(request: HttpRequest):
        token = token_of(request)
        return token, api_request_admit(token=token)

    def decorate(view):
        @functools.wraps(view)
        async def admitted_view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                token, slots = await database_section(admit)(request)
            except GatewayError as error:
                return error_response(error)
            return await answered_holding(slots, view(request, token, *args, **kwargs))

        return csrf_exempt(admitted_view)

    return decorate


async def answered_holding(slots: Slots, answer: Awaitable[HttpResponse]) -> HttpResponse:
    """Await ``answer`` holding ``slots``, given back once the answer is sent: at once for a
    plain answer or an exception, when a stream ends however it ends (its last chunk, or its
    client leaving) for a streamed one."""
    try:
        response = await answer
    except BaseException:
        slots.release()
        raise
    if not response.streaming:
        slots.release()
        return response
    response.streaming_content = _releasing(response.streaming_content, slots)
    response._resource_closers.append(slots.release)
    return response


async def _releasing(chunks, slots: Slots):
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        slots.release()


def _refused(message: str, retry_after: int) -> RefusedError:
    error = RefusedError(message, error_type="rate_limit_error", http_status=429)
    error.retry_headers = {"retry-after": str(retry_after)}
    return error
