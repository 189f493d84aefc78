"""A provider request rate limit shared by every worker process.

Celery's ``rate_limit`` is per worker process, so N workers would make N times the allowed
rate. This limiter keeps one schedule for all of them: a GCRA ("theoretical arrival time")
with no burst, so two permits are never closer than ``60 / rate`` seconds apart, whichever
process asks (spaced for 90 % of it: ``SCHEDULE_SHARE``). Each caller *reserves* the next
free slot and sleeps until it: no polling, and
waiting callers are served in the order they asked.

Two stores hold the schedule:

- Redis (production, any number of machines): one Lua script, atomic, using Redis's clock.
- A file under ``var/`` guarded by ``flock`` (development without Redis): every process on
  this machine shares it; it does not span machines, which `make run` never needs.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings

# KEYS[1]: the schedule key; ARGV[1]: interval in microseconds. Returns the wait in microseconds.
# string.format('%d'), not tostring: tostring keeps 14 digits and would round the time.
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ttl_ms = math.floor(interval / 1000) + 60000
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', ttl_ms)
return tat - now
"""


# Permits are spaced for 90 % of the limit. A probe leaves its worker a few milliseconds
# after its permit, by a delay that varies with load, so arrivals at the provider bunch:
# with permits at exactly the limit the bench saw 54 probes in one second against a limit of
# 50 per second (docs/decisions/031). Anthropic's limits are token buckets that refill
# continuously, so the margin keeps short windows under the limit too.
SCHEDULE_SHARE = 0.9


def _interval_seconds(per_minute: int) -> float:
    return 60.0 / (per_minute * SCHEDULE_SHARE)


class RateLimiter(Protocol):
    def reserve(self) -> float:
        """Reserve the next permit; return how many seconds to wait before using it."""
        ...


@dataclass
class RedisRateLimiter:
    url: str
    name: str
    per_minute: int

    def __post_init__(self) -> None:
        import redis

        self._client = redis.Redis.from_url(self.url)
        self._script = self._client.register_script(_RESERVE_LUA)

    def reserve(self) -> float:
        interval_us = int(_interval_seconds(self.per_minute) * 1_000_000)
        wait_us = int(self._script(keys=[f"byok:ratelimit:{self.name}"], args=[interval_us]))
        return wait_us / 1_000_000


@dataclass
class FileRateLimiter:
    directory: Path
    name: str
    per_minute: int

    def reserve(self) -> float:
        interval = _interval_seconds(self.per_minute)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.name}.tat"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 64).decode() or "0"
            # time.time(): the one clock every process on this machine shares.
            now = time.time()
            tat = max(float(raw), now)
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, repr(tat + interval).encode())
        finally:
            os.close(fd)  # closing the descriptor releases the lock
        return tat - now


_limiters: dict[tuple, RateLimiter] = {}


def rate_limiter_for(name: str, *, per_minute: int | None = None) -> RateLimiter:
    """Return the shared limiter for ``name`` (e.g. "llm-key-check:anthropic")."""
    rate = per_minute or settings.LLM_KEY_CHECK_RATE_PER_MINUTE
    url = settings.LLM_KEY_CHECK_RATE_LIMIT_URL
    # One Redis connection pool per process, not one per check.
    cache_key = (os.getpid(), url, name, rate)
    limiter = _limiters.get(cache_key)
    if limiter is not None:
        return limiter
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        limiter = RedisRateLimiter(url=url, name=name, per_minute=rate)
    elif scheme == "file":
        limiter = FileRateLimiter(directory=Path(urlsplit(url).path), name=name, per_minute=rate)
    else:
        raise ValueError(
            f"LLM_KEY_CHECK_RATE_LIMIT_URL must be redis://… or file://…, not {scheme!r}"
        )
    _limiters[cache_key] = limiter
    return limiter


# A permit this close is waited for in place; a later one is waited for outside the task
# (the check is sent again with a countdown), so no check holds a worker slot, or dies of
# its soft time limit, while it waits (docs/decisions/051).
MAX_INLINE_WAIT_SECONDS = 1.0
# A permit whose time passed longer ago than this was someone's earlier try (a redelivery,
# a retry after a database error): it is not used again, a new one is reserved.
PERMIT_STALE_SECONDS = 2.0


def permit_reserve(name: str) -> float:
    """Reserve the next permit of ``name``; return when it is due (seconds since the epoch)."""
    return time.time() + max(rate_limiter_for(name).reserve(), 0.0)


def permit_usable(permit_at: float | None) -> bool:
    """True when a permit reserved earlier may still be used (its time has not gone stale)."""
    return permit_at is not None and time.time() - permit_at <= PERMIT_STALE_SECONDS


def permit_wait(permit_at: float) -> None:
    """Sleep until a permit is due (callers wait in place only for a short remainder)."""
    remaining = permit_at - time.time()
    if remaining > 0:
        time.sleep(remaining)
