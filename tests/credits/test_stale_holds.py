"""Holds never leak: the stale-hold sweep charges what a dead process left open its whole
reservation (docs/decisions/107), never a live one, and never twice."""

import datetime

import pytest
from django.conf import settings as django_settings
from django.db.models import Sum
from django.utils import timezone

from credits.models import CreditEntry, CreditReservation, EntryKind
from credits.selectors import credits_balance
from credits.services import (
    STALE_HOLD_REASON,
    ReservationExpiredError,
    credits_grant,
    credits_hold,
    credits_release,
    credits_release_stale_holds,
    credits_reservations_renew,
    credits_settle,
)
from credits.tasks import credits_release_stale_holds as sweep_task
from workspaces.models import Workspace

from .threads import run_in_threads

MAX_AGE = datetime.timedelta(minutes=25)


def entries_sum(workspace) -> int:
    return CreditEntry.objects.filter(workspace=workspace).aggregate(s=Sum("amount"))["s"] or 0


@pytest.fixture
def old_clock(monkeypatch):
    """Holds written inside this context carry a creation time 30 minutes in the past."""
    real_now = timezone.now

    class Clock:
        offset = datetime.timedelta(0)

        def __enter__(self):
            self.offset = datetime.timedelta(minutes=-30)
            return self

        def __exit__(self, *exc):
            self.offset = datetime.timedelta(0)

    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: real_now() + clock.offset)
    return clock


@pytest.mark.django_db
def test_the_sweep_charges_only_old_open_holds_with_a_reason(workspace, old_clock):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    with old_clock:
        stale = credits_hold(workspace=workspace, amount=100, idempotency_key="dead")
        settled = credits_hold(workspace=workspace, amount=100, idempotency_key="done")
    credits_settle(hold=settled, amount=40)
    fresh = credits_hold(workspace=workspace, amount=100, idempotency_key="running")

    assert credits_release_stale_holds(older_than=MAX_AGE) == 1

    charge = CreditEntry.objects.get(hold=stale)
    assert (charge.kind, charge.amount, charge.charged, charge.reason) == (
        EntryKind.SETTLE,
        0,
        100,
        STALE_HOLD_REASON,
    )
    assert CreditReservation.objects.get(pk=stale.pk).state == "expired"
    assert not CreditEntry.objects.filter(hold=fresh).exists()
    assert CreditEntry.objects.get(hold=settled).kind == EntryKind.SETTLE
    # The stale hold stays charged, the fresh one stays held.
    assert credits_balance(workspace=workspace) == 1_000 - 40 - 100 - 100 == entries_sum(workspace)
    # Idempotent: a second sweep finds nothing left to charge.
    assert credits_release_stale_holds(older_than=MAX_AGE) == 0
    assert CreditEntry.objects.filter(hold=stale).count() == 1


@pytest.mark.django_db
def test_a_settle_after_the_sweep_does_not_charge_twice(workspace, old_clock):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    with old_clock:
        hold = credits_hold(workspace=workspace, amount=100, idempotency_key="dead")
    credits_release_stale_holds(older_than=MAX_AGE)
    with pytest.raises(ReservationExpiredError) as raised:
        credits_settle(hold=hold, amount=60)
    assert raised.value.charged == 100
    with pytest.raises(ReservationExpiredError):
        credits_release(hold=hold)
    assert CreditEntry.objects.filter(hold=hold).count() == 1
    assert credits_balance(workspace=workspace) == 900 == entries_sum(workspace)


@pytest.mark.django_db
def test_the_sweep_charges_by_lease_not_by_age(workspace, old_clock):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    with old_clock:
        renewed = credits_hold(workspace=workspace, amount=100, idempotency_key="long")
        dead = credits_hold(workspace=workspace, amount=100, idempotency_key="dead")
    assert credits_reservations_renew(hold_ids=[renewed.pk]) == 1  # its process is alive

    assert credits_release_stale_holds(older_than=MAX_AGE) == 1
    assert CreditEntry.objects.get(hold=dead).charged == 100
    assert not CreditEntry.objects.filter(hold=renewed).exists()
    settle = credits_settle(hold=renewed, amount=100)
    assert settle.charged == 100
    assert credits_balance(workspace=workspace) == 800 == entries_sum(workspace)


@pytest.mark.django_db
def test_the_beat_task_uses_the_max_age_setting(workspace, old_clock, settings):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    with old_clock:
        credits_hold(workspace=workspace, amount=100, idempotency_key="dead")
    settings.AI_HOLD_MAX_AGE_SECONDS = 3600  # 30 minutes old is not stale yet
    assert sweep_task.delay().get() == 0
    settings.AI_HOLD_MAX_AGE_SECONDS = 1500
    assert sweep_task.delay().get() == 1
    assert credits_balance(workspace=workspace) == 900  # charged, not given back


def test_the_sweep_is_on_the_beat_schedule_and_the_lease_is_renewed_well_within_it():
    entry = django_settings.CELERY_BEAT_SCHEDULE["credits-release-stale-holds"]
    assert entry["task"] == sweep_task.name
    assert entry["schedule"] <= datetime.timedelta(minutes=5)
    # A live request's lease is renewed every third of it, not bounded by its length.
    assert django_settings.AI_HOLD_MAX_AGE_SECONDS >= 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sweeps_racing_with_settles_close_every_hold_exactly_once(on_postgres, old_clock):
    workspace = Workspace.objects.create(name="Race", slug="race")
    credits_grant(workspace=workspace, amount=100_000, reason="Test")
    with old_clock:
        holds = [
            credits_hold(workspace=workspace, amount=100, idempotency_key=f"req-{i}")
            for i in range(20)
        ]

    def work(i: int):
        if i % 2:
            return credits_release_stale_holds(older_than=MAX_AGE)
        return credits_settle(hold=holds[i // 2 % 20], amount=30)

    results = run_in_threads(30, work)
    late = [r for r in results if isinstance(r, ReservationExpiredError)]
    assert not [r for r in results if isinstance(r, Exception) and r not in late], results
    closes = CreditEntry.objects.filter(hold__in=holds)
    assert not closes.filter(kind=EntryKind.RELEASE).exists()
    assert closes.filter(kind=EntryKind.SETTLE).count() == 20  # each hold closed once
    swept = closes.filter(reason=STALE_HOLD_REASON)
    assert swept.count() == sum(r for r in results if isinstance(r, int))
    assert swept.count() == 5 + len(late)  # the five nobody settles, and each lost race
    assert set(swept.values_list("charged", flat=True)) == {100}
    assert set(closes.exclude(reason=STALE_HOLD_REASON).values_list("charged", flat=True)) <= {30}
    assert not CreditReservation.objects.filter(state="open").exists()
    charged = closes.aggregate(s=Sum("charged"))["s"]
    assert charged == 100 * swept.count() + 30 * (15 - len(late))
    assert credits_balance(workspace=workspace) == 100_000 - charged == entries_sum(workspace)
