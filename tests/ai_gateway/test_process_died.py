"""A credit-paid request whose serving process died (SIGKILL: no code of the request runs) is
charged its whole reservation by the sweep, and the sweep writes its one usage row, outcome
``process_died`` (SPEC §16, docs/decisions/107). A process that was only late, not dead,
never charges or records it a second time; a live (renewed) reservation is never touched."""

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from ai_gateway import leases
from ai_gateway import services as gateway
from ai_gateway.models import AIRequest, Outcome
from credits.models import CreditAccount, CreditEntry, CreditReservation, EntryKind
from credits.selectors import credits_balance
from credits.services import (
    STALE_HOLD_REASON,
    credits_release_stale_holds,
    credits_reservations_renew,
)
from providers import Usage

pytestmark = pytest.mark.django_db

LEASE = datetime.timedelta(seconds=300)


def _begin(workspace, user=None, *, stream=False):
    call = gateway.call_begin(
        workspace=workspace,
        user=user,
        body={
            "model": "claude-sonnet-5",
            "max_tokens": 100,
            "stream": stream,
            "messages": [{"role": "user", "content": "Take your time"}],
        },
    )
    assert call.hold is not None  # a credits request: reserved
    return call


def _dies(call) -> None:
    """The process serving ``call`` stops: nothing renews its lease any more."""
    leases.keeper.discard(call.hold.pk)
    CreditReservation.objects.filter(pk=call.hold.pk).update(renewed_at=timezone.now() - 2 * LEASE)


def _ledger_is_the_balance(workspace) -> None:
    total = CreditEntry.objects.filter(workspace=workspace).aggregate(s=Sum("amount"))["s"]
    assert credits_balance(workspace=workspace) == total
    assert CreditAccount.objects.get(workspace=workspace).open_reservations == 0


def test_the_sweep_charges_a_dead_process_its_reservation_and_writes_its_usage_row(
    workspace, admin_user, funded
):
    call = _begin(workspace, admin_user, stream=True)
    held = call.held
    _dies(call)

    assert credits_release_stale_holds(older_than=LEASE) == 1

    assert credits_balance(workspace=workspace) == funded - held
    settle = CreditEntry.objects.get(hold=call.hold)
    assert (settle.kind, settle.charged, settle.written_off, settle.reason) == (
        EntryKind.SETTLE,
        held,
        0,
        STALE_HOLD_REASON,
    )
    assert CreditReservation.objects.get(pk=call.hold.pk).state == "expired"
    [row] = AIRequest.objects.filter(workspace=workspace)
    assert (row.outcome, row.credits_charged, row.credential_source) == (
        Outcome.PROCESS_DIED,
        held,
        "platform",
    )
    assert (row.model, row.provider, row.stream, row.user_id) == (
        "claude-sonnet-5",
        "anthropic",
        True,
        admin_user.pk,
    )
    assert row.prices == call.price.snapshot()
    assert row.total_tokens == 0  # never seen
    _ledger_is_the_balance(workspace)
    # Once: a second sweep finds nothing.
    assert credits_release_stale_holds(older_than=LEASE) == 0
    assert AIRequest.objects.count() == 1


@pytest.mark.parametrize("amount", ["usage", "nothing"])
def test_a_process_that_ends_its_request_after_the_sweep_charges_nothing_more(
    workspace, funded, amount
):
    call = _begin(workspace)
    held = call.held
    _dies(call)
    assert credits_release_stale_holds(older_than=LEASE) == 1

    # It was only stalled: it ends its request now, with what the provider billed or with
    # nothing seen (a release).
    usage = Usage(input_tokens=12, output_tokens=30) if amount == "usage" else None
    row, charged = call.end(outcome=Outcome.OK, usage=usage, complete=usage is not None)

    assert (row, charged) == (None, held)  # the sweep's charge, not a second one
    assert credits_balance(workspace=workspace) == funded - held
    [only] = AIRequest.objects.filter(workspace=workspace)
    assert only.outcome == Outcome.PROCESS_DIED
    assert list(CreditEntry.objects.filter(hold=call.hold).values_list("kind", flat=True)) == [
        EntryKind.SETTLE
    ]
    _ledger_is_the_balance(workspace)


def test_the_sweep_never_touches_a_live_renewed_reservation(workspace, funded):
    live = _begin(workspace)
    dead = _begin(workspace)
    for call in (live, dead):
        _dies(call)  # both unrenewed for two leases ...
    # ... but the live one's process renews it (its lease keeper's one UPDATE).
    assert credits_reservations_renew(hold_ids=[live.hold.pk]) == 1

    assert credits_release_stale_holds(older_than=LEASE) == 1
    assert CreditReservation.objects.get(pk=live.hold.pk).state == "open"
    assert not CreditEntry.objects.filter(hold=live.hold).exists()
    row, charged = live.end(
        outcome=Outcome.OK, usage=Usage(input_tokens=12, output_tokens=30), complete=True
    )
    assert row.outcome == Outcome.OK and 0 < charged < live.held
    outcomes = sorted(AIRequest.objects.values_list("outcome", flat=True))
    assert outcomes == [Outcome.OK, Outcome.PROCESS_DIED]
    assert credits_balance(workspace=workspace) == funded - charged - dead.held
    _ledger_is_the_balance(workspace)


def test_release_stale_holds_prints_what_it_charged(workspace, funded):
    call = _begin(workspace)
    _dies(call)
    out = StringIO()
    call_command("release_stale_holds", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(
        f"charged hold {call.hold.pk} of 'acme': {call.held:,} credits, its whole reservation: "
        "its process died (last renewed "
    )
    assert lines[-1] == "Charged 1 stale reservation(s)."
    out = StringIO()
    call_command("release_stale_holds", stdout=out)
    assert out.getvalue() == "Charged 0 stale reservation(s).\n"
