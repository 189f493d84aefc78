"""Request-rate and concurrency limits per workspace API token and per workspace (SPEC §17),
on every endpoint under ``/anthropic`` (count_tokens and models included).

Counters live in Django's cache: shared by every worker process when ``CACHE_URL`` points at
Redis (production), per process with the default local-memory cache. A request over a
limit is answered 429 ``rate_limit_error`` with ``retry-after``, as Anthropic answers its
own limits (docs.claude.com/en/api/rate-limits).

The rate is a fixed one-minute window. A concurrency slot is held until the answer is sent
(a stream's last byte); its counter expires ``SLOT_TTL_SECONDS`` after the last request
took one, so slots a killed process never gave back do not stay taken forever.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache

from .errors import RefusedError

SLOT_TTL_SECONDS = 3600
WINDOW_SECONDS = 60


@dataclass
class Slots:
    """The concurrency slots one request holds; ``release()`` gives them back once."""

    keys: list[str] = field(default_factory=list)

    def release(self) -> None:
        keys, self.keys = self.keys, []
        for key in keys:
            with contextlib.suppress(ValueError):  # expired meanwhile
                cache.decr(key)


def _limits(token) -> list[tuple[str, int, int]]:
    """(scope, requests per minute, concurrent requests) for the token and its workspace."""
    return [
        (
            f"token:{token.pk}",
            settings.AI_API_TOKEN_REQUESTS_PER_MINUTE,
            settings.AI_API_TOKEN_MAX_CONCURRENT_REQUESTS,
        ),
        (
            f"workspace:{token.workspace_id}",
            settings.AI_API_WORKSPACE_REQUESTS_PER_MINUTE,
            settings.AI_API_WORKSPACE_MAX_CONCURRENT_REQUESTS,
        ),
    ]


def api_request_admit(*, token) -> Slots:
    """Count the request against its token's and workspace's limits and take its
    concurrency slots; raise a 429 RefusedError if any limit is reached."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    slots = Slots()
    try:
        for scope, per_minute, concurrent in _limits(token):
            if per_minute > 0:
                key = f"ai-api-rate:{scope}:{window}"
                cache.add(key, 0, WINDOW_SECONDS * 2)
                if cache.incr(key) > per_minute:
                    wait = int((window + 1) * WINDOW_SECONDS - now) + 1
                    raise _refused(
                        f"This {scope.split(':')[0]} has sent more than {per_minute} requests "
                        f"this minute ({_setting(scope, 'rate')}); try again in {wait} s.",
                        wait,
                    )
            if concurrent > 0:
                key = f"ai-api-concurrent:{scope}"
                cache.add(key, 0, SLOT_TTL_SECONDS)
                cache.touch(key, SLOT_TTL_SECONDS)
                slots.keys.append(key)
                if cache.incr(key) > concurrent:
                    raise _refused(
                        f"This {scope.split(':')[0]} already has {concurrent} requests in "
                        f"progress ({_setting(scope, 'concurrency')}); try again when one "
                        "has finished.",
                        1,
                    )
    except BaseException:
        slots.release()
        raise
    return slots


def _setting(scope: str, kind: str) -> str:
    who = "TOKEN" if scope.startswith("token") else "WORKSPACE"
    if kind == "rate":
        return f"AI_API_{who}_REQUESTS_PER_MINUTE"
    return f"AI_API_{who}_MAX_CONCURRENT_REQUESTS"


def _refused(message: str, retry_after: int) -> RefusedError:
    error = RefusedError(message, error_type="rate_limit_error", http_status=429)
    error.retry_headers = {"retry-after": str(retry_after)}
    return error
