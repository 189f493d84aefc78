import datetime

import pytest

from credits.models import CreditEntry, EntryKind
from credits.selectors import credits_balance
from credits.services import (
    credits_grant,
    credits_monthly_allowance_grant,
    credits_monthly_allowance_grant_all,
)
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

NOVEMBER = datetime.date(2026, 11, 1)


def test_allowance_is_granted_once_per_workspace_and_month(workspace, settings):
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = 5_000
    entry = credits_monthly_allowance_grant(workspace=workspace, month=NOVEMBER)
    assert (entry.kind, entry.amount) == (EntryKind.GRANT, 5_000)
    assert entry.reason == "Monthly AI credits allowance for November 2026"
    # Any day of the same month is the same month.
    assert credits_monthly_allowance_grant(workspace=workspace, month=NOVEMBER) is None
    assert (
        credits_monthly_allowance_grant(workspace=workspace, month=datetime.date(2026, 11, 30))
        is None
    )
    assert credits_balance(workspace=workspace) == 5_000

    december = credits_monthly_allowance_grant(
        workspace=workspace, month=datetime.date(2026, 12, 1)
    )
    assert december is not None
    assert credits_balance(workspace=workspace) == 10_000


def test_a_changed_allowance_does_not_grant_the_same_month_again(workspace, settings):
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = 5_000
    credits_monthly_allowance_grant(workspace=workspace, month=NOVEMBER)
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = 7_000
    assert credits_monthly_allowance_grant(workspace=workspace, month=NOVEMBER) is None
    assert credits_balance(workspace=workspace) == 5_000


def test_a_zero_allowance_grants_nothing(workspace, settings):
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = 0
    assert credits_monthly_allowance_grant(workspace=workspace, month=NOVEMBER) is None
    assert CreditEntry.objects.count() == 0


def test_allowance_for_all_workspaces_counts_only_new_grants(workspace, settings):
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = 1_000
    others = WorkspaceFactory.create_batch(3)
    credits_monthly_allowance_grant(workspace=others[0], month=NOVEMBER)
    credits_grant(workspace=others[1], amount=50, reason="Unrelated top-up")

    assert credits_monthly_allowance_grant_all(month=NOVEMBER) == 3
    assert credits_monthly_allowance_grant_all(month=NOVEMBER) == 0
    assert credits_balance(workspace=workspace) == 1_000
    assert credits_balance(workspace=others[1]) == 1_050
    assert CreditEntry.objects.filter(idempotency_key="allowance:2026-11").count() == 4
