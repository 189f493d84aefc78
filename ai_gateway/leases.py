"""The leases of the reservations this process serves.

A reservation's lease says its process is alive: the sweep charges (whole) only reservations
not renewed for ``AI_HOLD_MAX_AGE_SECONDS`` (docs/decisions/107). One thread per process
renews every open reservation of the process at once, in one UPDATE, three times per lease,
so a request of any length (a 40-minute stream, a client reading slowly) keeps its
reservation, and a process that dies (SIGKILL, OOM) stops renewing and is swept. The thread
holds a database connection only for the UPDATE.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connections

from credits.services import credits_reservations_renew

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the leases of the holds registered with it until they are unregistered."""

    def __init__(self) -> None:
        self._holds: set[int] = set()
        self._deferred: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

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
        a request ended); its lease is renewed meanwhile, so the sweep leaves it alone."""
        with self._lock:
            self._deferred.append(settle)
        self._ensure_thread()

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
        try:
            return credits_reservations_renew(hold_ids=holds)
        finally:
            for connection in connections.all(initialized_only=True):
                connection.close()

    def _run(self) -> None:
        while True:
            period = max(0.2, settings.AI_HOLD_MAX_AGE_SECONDS / 3)
            self._wake.wait(period)
            self._wake.clear()
            try:
                close_old_connections()
                self.renew_now()
                if self._deferred:
                    self.settle_deferred()
            except Exception:
                logger.exception("credits lease renewal failed; retrying")


keeper = LeaseKeeper()
