"""The lease thread retries a settlement the database refused within seconds, not at the next
renewal (a third of ``AI_HOLD_MAX_AGE_SECONDS``: 100 s by default, 500 s in these tests)."""

import threading
import time

import pytest
from django.db import OperationalError, connections

from ai_gateway.leases import FIRST_RETRY_SECONDS, LeaseKeeper


def test_a_refused_settlement_is_retried_after_a_second_then_at_doubling_intervals(settings):
    settings.AI_HOLD_MAX_AGE_SECONDS = 1500
    keeper = LeaseKeeper()
    tries: list[float] = []
    written = threading.Event()

    def settle() -> None:
        tries.append(time.monotonic())
        if len(tries) < 3:
            raise OperationalError("database table is locked")
        written.set()

    deferred_at = time.monotonic()
    keeper.defer(settle)

    assert written.wait(timeout=20), f"tried {len(tries)} times in 20 s"
    first, second, third = (t - deferred_at for t in tries)
    late = 1.5  # a thread's wake-up on a loaded machine
    assert FIRST_RETRY_SECONDS <= first < FIRST_RETRY_SECONDS + late
    assert 2 * FIRST_RETRY_SECONDS <= second - first < 2 * FIRST_RETRY_SECONDS + late
    assert 4 * FIRST_RETRY_SECONDS <= third - second < 4 * FIRST_RETRY_SECONDS + late
    assert keeper.settle_deferred() == 0  # nothing left waiting


def test_a_settlement_taken_before_its_retry_is_not_run_twice(settings):
    settings.AI_HOLD_MAX_AGE_SECONDS = 1500
    keeper = LeaseKeeper()
    runs: list[str] = []
    keeper.defer(lambda: runs.append("settled"))

    assert keeper.settle_deferred() == 0  # the request's own retry got there first
    time.sleep(FIRST_RETRY_SECONDS + 0.5)
    assert runs == ["settled"]


@pytest.mark.postgres  # Django never closes SQLite's in-memory test database
@pytest.mark.django_db(transaction=True)
def test_the_thread_holds_no_database_connection_after_a_retried_settlement(on_postgres, settings):
    """Nor after a renewal: a connection kept open between the thread's writes is one the
    database counts for the process's whole life (and PostgreSQL's test teardown waits on)."""
    settings.AI_HOLD_MAX_AGE_SECONDS = 1500
    keeper = LeaseKeeper()
    used = []
    written = threading.Event()

    def settle() -> None:
        ours = connections["default"]  # the thread's own, not the proxy
        ours.ensure_connection()
        used.append(ours)
        written.set()

    keeper.defer(settle)

    assert written.wait(timeout=10)
    deadline = time.monotonic() + 5
    while used[0].connection is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert used[0].connection is None
