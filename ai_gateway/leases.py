"""The leases of the reservations this process serves.

A reservation's lease says its process is alive: the sweep charges (whole) only reservations
not renewed for ``AI_HOLD_MAX_AGE_SECONDS`` (docs/decisions/107). One thread per process
renews every open reservation of the process at once, in one UPDATE, three times per lease,
so a request of any length (a 40-minute stream, a client reading slowly) keeps its
reservation, and a process that dies (SIGKILL, OOM) stops renewing and is swept. The thread
holds a database connection only while it writes.

A settlement the database refused (unreachable, or a lock) is retried on the same thread one
second later, then at doubling intervals up to the renewal period: a blip of the database
delays a usage row by seconds, not by a third of a lease (decision 104).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections

from credits.services import credits_reservations_renew

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 1.0


class LeaseKeeper:
    """Renews the leases of the holds registered with it until they are unregistered."""

    def __init__(self) -> None:
        self._holds: set[int] = set()
        self._deferred: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_in = FIRST_RETRY_SECONDS
        self._retry_at = 0.0

    def add(self, hold_id: int) -> None:
        with self._lock:
            self._holds.add(hold_id)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="credits-lease-keeper", daemon=True
                )
                self._thread.start()

    def discard(self, hold_id: int) -> None:
        with self._lock:
            self._holds.discard(hold_id)

    def defer(self, settle: Callable[[], None]) -> None:
        """Run ``settle`` on this thread until it succeeds (the database was unreachable when
        a request ended): one second from now, then at doubling intervals. Its lease is
        renewed meanwhile, so the sweep leaves it alone."""
        with self._lock:
            if not self._deferred:
                self._retry_in = FIRST_RETRY_SECONDS
                self._retry_at = time.monotonic() + FIRST_RETRY_SECONDS
            self._deferred.append(settle)
        self._ensure_thread()
        self._wake.set()  # the thread waits for the next renewal: make it wait for the retry

    def settle_deferred(self) -> int:
        """Try every deferred settlement once; return how many are still waiting."""
        with self._lock:
            waiting, self._deferred = self._deferred, []
        failed = []
        for settle in waiting:
            try:
                settle()
            except Exception:
                logger.warning("deferred credits settlement failed; retrying", exc_info=True)
                failed.append(settle)
        with self._lock:
            self._deferred.extend(failed)
            return len(self._deferred)

    def renew_now(self) -> int:
        """Renew every registered lease now; return how many were renewed."""
        with self._lock:
            holds = sorted(self._holds)
        if not holds:
            return 0
        return credits_reservations_renew(hold_ids=holds)

    def _run(self) -> None:
        renew_at = time.monotonic() + self._period()
        while True:
            now = time.monotonic()
            if now >= renew_at:
                renew_at = now + self._period()
                self._guarded(self.renew_now, "credits lease renewal failed; retrying")
            if self._deferred and now >= self._retry_at:
                self._retry_deferred()
            due = min(renew_at, self._retry_at) if self._deferred else renew_at
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()

    def _retry_deferred(self) -> None:
        if self._guarded(self.settle_deferred, "deferred settlements failed"):
            self._retry_in = min(self._retry_in * 2, self._period())
            self._retry_at = time.monotonic() + self._retry_in

    @staticmethod
    def _period() -> float:
        return max(0.2, settings.AI_HOLD_MAX_AGE_SECONDS / 3)

    @staticmethod
    def _guarded(step: Callable[[], int], failure: str) -> int:
        """Run one of the thread's steps; its database connection is closed after it."""
        try:
            return step()
        except Exception:
            logger.exception(failure)
            return 1
        finally:
            for connection in connections.all(initialized_only=True):
                connection.close()


keeper = LeaseKeeper()
