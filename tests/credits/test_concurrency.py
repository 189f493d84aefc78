"""The ledger under real concurrency: real threads, each with its own PostgreSQL connection."""

import datetime
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Sum

from credits.exceptions import ConcurrencyLimitError, InsufficientCreditsError
from credits.models import CreditAccount, CreditEntry, CreditReservation, EntryKind
from credits.selectors import credits_balance
from credits.services import (
    credits_extend,
    credits_grant,
    credits_hold,
    credits_monthly_allowance_grant,
    credits_release,
    credits_settle,
)
from workspaces.models import Workspace

from .threads import run_in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def entries_sum(workspace) -> int:
    return CreditEntry.objects.filter(workspace=workspace).aggregate(s=Sum("amount"))["s"] or 0


@pytest.fixture
def funded(on_postgres):
    workspace = Workspace.objects.create(name="Race", slug="race")
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    return workspace


def test_50_concurrent_holds_against_a_balance_for_10_let_exactly_10_through(funded):
    assert connection.vendor == "postgresql"
    results = run_in_threads(
        50, lambda i: credits_hold(workspace=funded, amount=100, idempotency_key=f"req-{i}")
    )
    kinds = Counter(type(r).__name__ for r in results)
    assert kinds == {"CreditEntry": 10, "InsufficientCreditsError": 40}
    refused = [r for r in results if isinstance(r, InsufficientCreditsError)]
    assert all(r.needed == 100 and 0 <= r.balance < 100 for r in refused)
    assert credits_balance(workspace=funded) == 0
    assert credits_balance(workspace=funded) == entries_sum(funded)
    assert CreditEntry.objects.filter(kind=EntryKind.HOLD).count() == 10


def test_concurrent_holds_and_settles_keep_the_balance_equal_to_the_entries(funded):
    def request(i: int):
        hold = credits_hold(workspace=funded, amount=60, idempotency_key=f"req-{i}")
        if i % 4 == 0:
            return credits_release(hold=hold)
        return credits_settle(hold=hold, amount=i % 50)

    results = run_in_threads(50, request)
    succeeded = [r for r in results if isinstance(r, CreditEntry)]
    assert succeeded  # some got through ...
    assert all(isinstance(r, CreditEntry | InsufficientCreditsError) for r in results)
    balance = credits_balance(workspace=funded)
    assert balance >= 0
    assert balance == entries_sum(funded)
    charged = CreditEntry.objects.filter(kind=EntryKind.SETTLE).aggregate(s=Sum("charged"))["s"]
    assert balance == 1_000 - charged
    newest = CreditEntry.objects.filter(workspace=funded).order_by("-id").first()
    assert newest.balance_after == balance


def test_a_repeated_hold_key_charges_once_under_concurrency(funded):
    results = run_in_threads(
        20, lambda i: credits_hold(workspace=funded, amount=100, idempotency_key="same-request")
    )
    assert all(isinstance(r, CreditEntry) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert credits_balance(workspace=funded) == 900
    assert credits_balance(workspace=funded) == entries_sum(funded)


def test_a_repeated_grant_key_grants_once_under_concurrency(funded):
    results = run_in_threads(
        20,
        lambda i: credits_grant(
            workspace=funded, amount=500, reason="Promo", idempotency_key="promo-2026"
        ),
    )
    assert all(isinstance(r, CreditEntry) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert credits_balance(workspace=funded) == 1_500


def test_concurrent_settles_and_releases_settle_once_and_release_at_most_once(funded):
    hold = credits_hold(workspace=funded, amount=300, idempotency_key="req-1")

    def close(i: int):
        if i % 2:
            return credits_release(hold=hold)
        return credits_settle(hold=hold, amount=100)

    results = run_in_threads(20, close)
    assert all(isinstance(r, CreditEntry) for r in results), results
    closes = CreditEntry.objects.filter(hold=hold)
    # The usage is charged once whichever comes first: after a release, as a late settle.
    assert closes.filter(kind=EntryKind.SETTLE).count() == 1
    assert closes.filter(kind=EntryKind.RELEASE).count() <= 1
    assert credits_balance(workspace=funded) == 900 == entries_sum(funded)


def test_the_monthly_allowance_is_granted_once_under_concurrency(funded, settings):
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = 2_500
    month = datetime.date(2026, 11, 1)
    results = run_in_threads(
        10, lambda i: credits_monthly_allowance_grant(workspace=funded, month=month)
    )
    assert not any(isinstance(r, Exception) for r in results), results
    assert sum(r is not None for r in results) == 1
    assert credits_balance(workspace=funded) == 3_500 == entries_sum(funded)


def test_the_open_request_limit_is_exact_under_concurrency(funded):
    results = run_in_threads(
        30,
        lambda i: credits_hold(workspace=funded, amount=10, idempotency_key=f"c-{i}", max_open=5),
    )
    holds = [r for r in results if isinstance(r, CreditEntry)]
    refused = [r for r in results if isinstance(r, ConcurrencyLimitError)]
    assert (len(holds), len(refused)) == (5, 25), results
    assert CreditAccount.objects.get(workspace=funded).open_reservations == 5
    for hold in holds:
        credits_settle(hold=hold, amount=3)
    assert CreditAccount.objects.get(workspace=funded).open_reservations == 0
    # Closed ones make room again.
    credits_hold(workspace=funded, amount=10, idempotency_key="after", max_open=5)
    assert credits_balance(workspace=funded) == 1_000 - 5 * 3 - 10 == entries_sum(funded)


def test_extensions_racing_for_the_last_credits_never_overdraw(funded):
    holds = [credits_hold(workspace=funded, amount=100, idempotency_key=f"x-{i}") for i in range(5)]
    taken = run_in_threads(40, lambda i: credits_extend(hold=holds[i % 5], amount=50))
    assert not [t for t in taken if isinstance(t, Exception)], taken
    assert sum(taken) == 500  # exactly what was left after the five holds
    assert credits_balance(workspace=funded) == 0 == entries_sum(funded)
    held = sum(
        CreditReservation.objects.filter(pk__in=[h.pk for h in holds]).values_list(
            "held", flat=True
        )
    )
    assert held == 1_000
