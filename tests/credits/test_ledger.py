import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.db.utils import IntegrityError

from credits.exceptions import (
    CreditsError,
    IdempotencyConflictError,
    InsufficientCreditsError,
)
from credits.models import CreditAccount, CreditEntry, EntryKind
from credits.selectors import credits_balance
from credits.services import (
    credits_adjust,
    credits_grant,
    credits_hold,
    credits_refund,
    credits_release,
    credits_settle,
)
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def entries_sum(workspace) -> int:
    return CreditEntry.objects.filter(workspace=workspace).aggregate(s=Sum("amount"))["s"] or 0


def assert_consistent(workspace):
    balance = credits_balance(workspace=workspace)
    assert balance >= 0
    assert balance == entries_sum(workspace)
    newest = ledger_of(workspace).first()
    if newest is not None:
        assert newest.balance_after == balance


def ledger_of(workspace):
    """The workspace's ledger, newest first."""
    return CreditEntry.objects.filter(workspace=workspace).order_by("-id")


def test_a_new_workspace_has_no_credits(workspace):
    assert credits_balance(workspace=workspace) == 0
    assert list(ledger_of(workspace)) == []


def test_grant_adds_to_the_balance_with_reason_and_actor(workspace, admin_user):
    entry = credits_grant(workspace=workspace, amount=500, reason="Welcome", actor=admin_user)
    assert (entry.kind, entry.amount, entry.balance_after) == (EntryKind.GRANT, 500, 500)
    assert entry.reason == "Welcome"
    assert entry.actor == admin_user
    credits_grant(workspace=workspace, amount=250, reason="Top-up")
    assert credits_balance(workspace=workspace) == 750
    assert_consistent(workspace)


@pytest.mark.parametrize("amount", [0, -5, 1.5, "10", True, 10**15 + 1])
def test_grant_refuses_a_non_positive_or_non_integer_amount(workspace, amount):
    with pytest.raises(ValueError):
        credits_grant(workspace=workspace, amount=amount, reason="x")
    assert CreditEntry.objects.count() == 0


@pytest.mark.parametrize("reason", ["", "   "])
def test_grant_requires_a_reason(workspace, reason):
    with pytest.raises(ValueError, match="reason"):
        credits_grant(workspace=workspace, amount=10, reason=reason)
    assert credits_balance(workspace=workspace) == 0


def test_hold_takes_the_amount_and_settle_gives_back_the_rest(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    assert (hold.kind, hold.amount, hold.balance_after, hold.held) == (
        EntryKind.HOLD,
        -300,
        700,
        300,
    )
    assert credits_balance(workspace=workspace) == 700

    settle = credits_settle(hold=hold, amount=120)
    assert (settle.kind, settle.amount, settle.charged, settle.hold) == (
        EntryKind.SETTLE,
        180,
        120,
        hold,
    )
    assert credits_balance(workspace=workspace) == 880
    assert_consistent(workspace)


def test_release_gives_the_whole_hold_back(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    hold = credits_hold(workspace=workspace, amount=400, idempotency_key="req-1")
    release = credits_release(hold=hold)
    assert (release.kind, release.amount, release.hold) == (EntryKind.RELEASE, 400, hold)
    assert credits_balance(workspace=workspace) == 1_000
    assert_consistent(workspace)


def test_hold_beyond_the_balance_is_refused_and_changes_nothing(workspace):
    credits_grant(workspace=workspace, amount=100, reason="Test")
    with pytest.raises(InsufficientCreditsError) as excinfo:
        credits_hold(workspace=workspace, amount=101, idempotency_key="req-1")
    assert (excinfo.value.balance, excinfo.value.needed) == (100, 101)
    assert "101" in str(excinfo.value) and "100" in str(excinfo.value)
    assert credits_balance(workspace=workspace) == 100
    assert CreditEntry.objects.filter(kind=EntryKind.HOLD).count() == 0


def test_hold_without_any_grant_is_refused(workspace):
    with pytest.raises(InsufficientCreditsError) as excinfo:
        credits_hold(workspace=workspace, amount=1, idempotency_key="req-1")
    assert excinfo.value.balance == 0


def test_a_hold_can_use_the_balance_exactly(workspace):
    credits_grant(workspace=workspace, amount=100, reason="Test")
    credits_hold(workspace=workspace, amount=100, idempotency_key="req-1")
    assert credits_balance(workspace=workspace) == 0
    with pytest.raises(InsufficientCreditsError):
        credits_hold(workspace=workspace, amount=1, idempotency_key="req-2")


def test_settle_above_the_hold_takes_the_excess_from_the_balance(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    hold = credits_hold(workspace=workspace, amount=100, idempotency_key="req-1")
    settle = credits_settle(hold=hold, amount=150)
    assert (settle.amount, settle.charged, settle.written_off) == (-50, 150, 0)
    assert credits_balance(workspace=workspace) == 850
    assert_consistent(workspace)


def test_settle_above_the_hold_never_drives_the_balance_below_zero(workspace):
    credits_grant(workspace=workspace, amount=120, reason="Test")
    hold = credits_hold(workspace=workspace, amount=100, idempotency_key="req-1")
    settle = credits_settle(hold=hold, amount=150)
    assert (settle.amount, settle.charged, settle.written_off) == (-20, 120, 30)
    assert credits_balance(workspace=workspace) == 0
    assert_consistent(workspace)


def test_settle_twice_returns_the_first_result_and_charges_once(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    first = credits_settle(hold=hold, amount=100)
    again = credits_settle(hold=hold, amount=100)
    assert again.pk == first.pk
    assert credits_balance(workspace=workspace) == 900
    with pytest.raises(IdempotencyConflictError):
        credits_settle(hold=hold, amount=200)
    assert credits_balance(workspace=workspace) == 900
    assert_consistent(workspace)


def test_release_after_settle_returns_the_settlement_and_refunds_nothing(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    settle = credits_settle(hold=hold, amount=100)
    assert credits_release(hold=hold).pk == settle.pk
    assert credits_release(hold=hold).pk == settle.pk
    assert credits_balance(workspace=workspace) == 900
    assert_consistent(workspace)


def test_release_twice_gives_back_once(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    first = credits_release(hold=hold)
    assert credits_release(hold=hold).pk == first.pk
    assert credits_balance(workspace=workspace) == 1_000
    assert_consistent(workspace)


def test_a_settle_after_a_release_still_charges_up_to_the_balance(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    credits_release(hold=hold)
    late = credits_settle(hold=hold, amount=50)
    assert (late.kind, late.amount, late.charged, late.written_off) == ("settle", -50, 50, 0)
    assert credits_settle(hold=hold, amount=50).pk == late.pk  # idempotent
    assert credits_balance(workspace=workspace) == 950
    assert_consistent(workspace)


def test_a_late_settle_above_the_balance_records_the_shortfall(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    credits_release(hold=hold)
    credits_adjust(workspace=workspace, amount=-980, reason="spent elsewhere")
    late = credits_settle(hold=hold, amount=50)
    assert (late.amount, late.charged, late.written_off) == (-20, 20, 30)
    assert credits_balance(workspace=workspace) == 0
    assert_consistent(workspace)


def test_only_a_hold_can_be_settled_or_released(workspace):
    grant = credits_grant(workspace=workspace, amount=1_000, reason="Test")
    with pytest.raises(ValueError):
        credits_settle(hold=grant, amount=1)
    with pytest.raises(ValueError):
        credits_release(hold=grant)


def test_repeated_hold_key_returns_the_first_hold_and_charges_once(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    first = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    again = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    assert again.pk == first.pk
    assert credits_balance(workspace=workspace) == 700
    assert_consistent(workspace)


def test_repeated_hold_key_returns_the_first_even_when_the_balance_is_spent(workspace):
    credits_grant(workspace=workspace, amount=300, reason="Test")
    first = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    assert credits_hold(workspace=workspace, amount=300, idempotency_key="req-1").pk == first.pk


def test_same_key_with_a_different_amount_is_an_error(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    with pytest.raises(IdempotencyConflictError, match="req-1"):
        credits_hold(workspace=workspace, amount=301, idempotency_key="req-1")
    assert credits_balance(workspace=workspace) == 700


def test_repeated_grant_key_grants_once_and_conflicting_amount_is_an_error(workspace):
    first = credits_grant(workspace=workspace, amount=50, reason="Promo", idempotency_key="promo")
    again = credits_grant(workspace=workspace, amount=50, reason="Promo", idempotency_key="promo")
    assert again.pk == first.pk
    with pytest.raises(IdempotencyConflictError):
        credits_grant(workspace=workspace, amount=60, reason="Promo", idempotency_key="promo")
    assert credits_balance(workspace=workspace) == 50


def test_idempotency_keys_belong_to_one_workspace(workspace):
    other = WorkspaceFactory()
    credits_grant(workspace=workspace, amount=50, reason="Promo", idempotency_key="promo")
    credits_grant(workspace=other, amount=70, reason="Promo", idempotency_key="promo")
    assert credits_balance(workspace=workspace) == 50
    assert credits_balance(workspace=other) == 70


def test_adjustment_moves_the_balance_both_ways_but_never_below_zero(workspace, admin_user):
    credits_grant(workspace=workspace, amount=100, reason="Test")
    credits_adjust(workspace=workspace, amount=-40, reason="Duplicate grant", actor=admin_user)
    assert credits_balance(workspace=workspace) == 60
    with pytest.raises(InsufficientCreditsError):
        credits_adjust(workspace=workspace, amount=-61, reason="Too much")
    credits_adjust(workspace=workspace, amount=5, reason="Goodwill")
    assert credits_balance(workspace=workspace) == 65
    with pytest.raises(ValueError):
        credits_adjust(workspace=workspace, amount=0, reason="Nothing")
    assert_consistent(workspace)


def test_refund_gives_back_at_most_what_was_charged(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    settle = credits_settle(hold=hold, amount=100)
    refund = credits_refund(settlement=settle, amount=60, reason="Bad answer")
    assert (refund.kind, refund.amount, refund.settlement) == (EntryKind.REFUND, 60, settle)
    with pytest.raises(CreditsError, match="already refunded"):
        credits_refund(settlement=settle, amount=41, reason="Again")
    credits_refund(settlement=settle, amount=40, reason="Rest")
    assert credits_balance(workspace=workspace) == 1_000
    assert_consistent(workspace)


def test_ledger_lists_newest_first(workspace):
    credits_grant(workspace=workspace, amount=10, reason="First")
    credits_grant(workspace=workspace, amount=20, reason="Second")
    assert [e.reason for e in ledger_of(workspace)] == [
        "Second",
        "First",
    ]


def test_balance_equals_the_sum_of_entries_after_a_mixed_history(workspace):
    credits_grant(workspace=workspace, amount=10_000, reason="Test")
    for i in range(20):
        hold = credits_hold(workspace=workspace, amount=200 + i, idempotency_key=f"req-{i}")
        if i % 3 == 0:
            credits_release(hold=hold)
        else:
            credits_settle(hold=hold, amount=i * 17)
    credits_adjust(workspace=workspace, amount=-123, reason="Correction")
    assert_consistent(workspace)


# --- the database keeps the invariants, whatever writes to it ---------------------------


def _raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_raw_update_driving_a_balance_negative_is_refused(workspace):
    credits_grant(workspace=workspace, amount=100, reason="Test")
    with pytest.raises(IntegrityError):
        _raw(
            "UPDATE credits_creditaccount SET balance = balance - 101 WHERE workspace_id = %s",
            [workspace.pk],
        )
    assert credits_balance(workspace=workspace) == 100


def test_orm_update_driving_a_balance_negative_is_refused(workspace):
    credits_grant(workspace=workspace, amount=100, reason="Test")
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditAccount.objects.filter(workspace=workspace).update(balance=-1)
    assert credits_balance(workspace=workspace) == 100


def test_raw_update_of_an_entry_is_refused(workspace):
    entry = credits_grant(workspace=workspace, amount=100, reason="Test")
    with pytest.raises(IntegrityError, match="append-only"):
        _raw("UPDATE credits_creditentry SET amount = 1000000 WHERE id = %s", [entry.pk])
    entry.refresh_from_db()
    assert entry.amount == 100


def test_saving_an_entry_again_is_refused(workspace):
    entry = credits_grant(workspace=workspace, amount=100, reason="Test")
    entry.reason = "Rewritten history"
    with pytest.raises(IntegrityError), transaction.atomic():
        entry.save()


def test_raw_duplicate_idempotency_key_is_refused(workspace):
    entry = credits_grant(workspace=workspace, amount=100, reason="Test", idempotency_key="k")
    with pytest.raises(IntegrityError):
        _raw(
            "INSERT INTO credits_creditentry (workspace_id, kind, amount, balance_after, charged,"
            " written_off, idempotency_key, reason, created_at)"
            " VALUES (%s, 'grant', 5, 105, 0, 0, %s, 'x', CURRENT_TIMESTAMP)",
            [workspace.pk, entry.idempotency_key],
        )


def test_a_hold_cannot_be_closed_twice_even_by_raw_sql(workspace):
    credits_grant(workspace=workspace, amount=100, reason="Test")
    hold = credits_hold(workspace=workspace, amount=10, idempotency_key="req-1")
    credits_release(hold=hold)
    with pytest.raises(IntegrityError):
        _raw(
            "INSERT INTO credits_creditentry (workspace_id, kind, amount, balance_after, charged,"
            " written_off, idempotency_key, hold_id, reason, created_at)"
            " VALUES (%s, 'release', 10, 110, 0, 0, 'other', %s, '', CURRENT_TIMESTAMP)",
            [workspace.pk, hold.pk],
        )


def test_a_grant_without_reason_is_refused_by_the_database(workspace):
    with pytest.raises(IntegrityError):
        _raw(
            "INSERT INTO credits_creditentry (workspace_id, kind, amount, balance_after, charged,"
            " written_off, idempotency_key, reason, created_at)"
            " VALUES (%s, 'grant', 5, 5, 0, 0, 'k', '', CURRENT_TIMESTAMP)",
            [workspace.pk],
        )


def test_raw_delete_of_an_entry_is_refused_on_postgres(workspace, on_postgres):
    entry = credits_grant(workspace=workspace, amount=100, reason="Test")
    with pytest.raises(IntegrityError, match="append-only"):
        _raw("DELETE FROM credits_creditentry WHERE id = %s", [entry.pk])
    assert CreditEntry.objects.filter(pk=entry.pk).exists()


def test_hold_and_settle_inside_a_callers_transaction(workspace):
    """A repeated key inside the caller's transaction leaves that transaction usable."""
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    with transaction.atomic():
        hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
        assert credits_hold(workspace=workspace, amount=300, idempotency_key="req-1").pk == hold.pk
        with pytest.raises(IdempotencyConflictError):
            credits_hold(workspace=workspace, amount=5, idempotency_key="req-1")
        settle = credits_settle(hold=hold, amount=100)
        assert credits_settle(hold=hold, amount=100).pk == settle.pk
        assert credits_release(hold=hold).pk == settle.pk
    assert credits_balance(workspace=workspace) == 900
    assert_consistent(workspace)


def test_entries_returned_by_the_hot_path_match_the_database(workspace):
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    settle = credits_settle(hold=hold, amount=120)
    for entry in (hold, settle):
        stored = CreditEntry.objects.get(pk=entry.pk)
        fields = ("kind", "amount", "balance_after", "charged", "idempotency_key", "hold_id")
        assert [getattr(stored, f) for f in fields] == [getattr(entry, f) for f in fields]
        assert stored.created_at == entry.created_at
    assert settle.hold == hold and hold.workspace == workspace


def test_a_hold_and_its_settle_take_a_few_queries(
    workspace, django_assert_max_num_queries, settings
):
    settings.AI_CREDITS_LOW_BALANCE_PERCENT = 0  # no alert on the way (tests/credits/test_alerts)
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    # savepoint/begin, conditional UPDATE, read back, INSERT entry, INSERT reservation,
    # release/commit
    with django_assert_max_num_queries(6):
        hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    # + the reservation's closing UPDATE (the caller knows what it holds: the gateway does)
    with django_assert_max_num_queries(6):
        credits_settle(hold=hold, amount=120, held=300)
    other = credits_hold(workspace=workspace, amount=1, idempotency_key="req-2")
    # + reading what the reservation holds
    with django_assert_max_num_queries(7):
        credits_release(hold=other)


def test_a_hold_for_a_member_adds_the_counter_and_limit_reads(
    workspace, member_user, django_assert_max_num_queries, settings
):
    settings.AI_CREDITS_LOW_BALANCE_PERCENT = 0
    credits_grant(workspace=workspace, amount=1_000, reason="Test")
    # + the member's own limit, the workspace default, and the month's counter: its first
    # hold finds no row to UPDATE, creates it and UPDATEs again
    with django_assert_max_num_queries(11):
        hold = credits_hold(
            workspace=workspace, amount=300, idempotency_key="req-1", user=member_user
        )
    with django_assert_max_num_queries(7):
        credits_settle(hold=hold, amount=120, held=300)
    # after it, the counter is one UPDATE
    with django_assert_max_num_queries(9):
        credits_hold(workspace=workspace, amount=300, idempotency_key="req-2", user=member_user)


class TestSettleInACallersTransaction:
    """The gateway settles and writes the request's usage row in one transaction."""

    def _usage_row(self, workspace, *, source="platform", charged=0):
        from ai_gateway.models import AIRequest

        return AIRequest.objects.create(
            workspace=workspace,
            provider="anthropic",
            model="claude-haiku-4-5",
            credential_source=source,
            outcome="ok",
            input_tokens=5,
            output_tokens=7,
            credits_charged=charged,
            latency_ms=3,
        )

    def test_the_row_is_written_with_what_the_settlement_charged(self, workspace):
        credits_grant(workspace=workspace, amount=1_000, reason="x")
        hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
        with transaction.atomic():
            entry = credits_settle(hold=hold, amount=120)
            usage = self._usage_row(workspace, charged=entry.charged)
        assert (entry.kind, entry.charged, entry.balance_after) == (EntryKind.SETTLE, 120, 880)
        usage.refresh_from_db()
        assert usage.credits_charged == 120
        assert_consistent(workspace)

    def test_usage_above_the_hold_charges_what_the_balance_covers(self, workspace):
        credits_grant(workspace=workspace, amount=100, reason="x")
        hold = credits_hold(workspace=workspace, amount=60, idempotency_key="req-1")
        with transaction.atomic():
            entry = credits_settle(hold=hold, amount=150)
            usage = self._usage_row(workspace, charged=entry.charged)
        # 60 held + the 40 left on the balance; the other 50 are recorded as a shortfall.
        assert (entry.charged, entry.written_off) == (100, 50)
        assert CreditEntry.objects.get(pk=entry.pk).written_off == 50
        assert usage.credits_charged == 100
        assert_consistent(workspace)

    def test_a_repeated_settle_in_a_callers_transaction_charges_once(self, workspace):
        credits_grant(workspace=workspace, amount=1_000, reason="x")
        hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
        with transaction.atomic():
            first = credits_settle(hold=hold, amount=120)
        with transaction.atomic():
            again = credits_settle(hold=hold, amount=120)
            self._usage_row(workspace, charged=again.charged)
        assert again.pk == first.pk and again.charged == 120
        assert credits_balance(workspace=workspace) == 880
        assert_consistent(workspace)

    def test_a_row_the_database_refuses_rolls_the_settle_back_and_leaves_the_hold_open(
        self, workspace
    ):
        credits_grant(workspace=workspace, amount=1_000, reason="x")
        hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
        # A BYOK usage row can never carry a charge (ai_gateway_airequest_byok_free).
        with pytest.raises(IntegrityError), transaction.atomic():
            entry = credits_settle(hold=hold, amount=120)
            self._usage_row(workspace, source="byok", charged=entry.charged)
        assert not CreditEntry.objects.filter(hold=hold).exists()
        assert credits_balance(workspace=workspace) == 700
        credits_release(hold=hold)
        assert credits_balance(workspace=workspace) == 1_000
        assert_consistent(workspace)


def test_the_ledger_services_use_no_hand_written_sql():
    import inspect

    import credits.services

    source = inspect.getsource(credits.services)
    assert "config.db" not in source
    assert "cursor" not in source and "raw-sql" not in source


def test_grants_and_adjustments_are_logged_once_each(workspace, admin_user, caplog):
    caplog.set_level("INFO", logger="credits.services")
    credits_grant(workspace=workspace, amount=500, reason="Promo", idempotency_key="g1")
    credits_grant(workspace=workspace, amount=500, reason="Promo", idempotency_key="g1")
    credits_adjust(workspace=workspace, amount=-200, reason="Typo", idempotency_key="a1")
    credits_adjust(workspace=workspace, amount=-200, reason="Typo", idempotency_key="a1")

    logged = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith(("credits granted", "credits adjusted"))
    ]
    assert [m.split(":")[0] for m in logged] == ["credits granted", "credits adjusted"]
    assert "amount=-200" in logged[1]
    assert credits_balance(workspace=workspace) == 300
