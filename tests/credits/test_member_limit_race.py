"""The member limit under real concurrency on PostgreSQL: exact, like the balance."""

import json
from collections import Counter

import pytest
from django.db.models import Sum
from django.test import Client

from credits.exceptions import MemberCreditLimitError
from credits.models import CreditEntry, EntryKind, MemberCreditUsage
from credits.selectors import credits_balance
from credits.services import credits_grant, credits_hold, credits_member_limit_set
from tests.ai_gateway.helpers import API, body
from tests.factories import MembershipFactory, WorkspaceFactory

from .test_member_limits import _hold_amount
from .threads import run_in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def entries_sum(workspace) -> int:
    return CreditEntry.objects.filter(workspace=workspace).aggregate(s=Sum("amount"))["s"] or 0


def member_used(workspace, user) -> int:
    return (
        MemberCreditUsage.objects.filter(workspace=workspace, user=user).aggregate(s=Sum("used"))[
            "s"
        ]
        or 0
    )


@pytest.fixture
def race(on_postgres):
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    member = MembershipFactory(workspace=workspace, role="member").user
    credits_grant(workspace=workspace, amount=1_000_000, reason="Test")
    return workspace, member


def test_30_concurrent_holds_let_exactly_as_many_through_as_the_limit_covers(race):
    workspace, member = race
    credits_member_limit_set(workspace=workspace, member=member, monthly_limit=1_000)
    results = run_in_threads(
        30,
        lambda i: credits_hold(
            workspace=workspace, amount=100, idempotency_key=f"req-{i}", user=member
        ),
    )
    kinds = Counter(type(r).__name__ for r in results)
    assert kinds == {"CreditEntry": 10, "MemberCreditLimitError": 20}, results
    refused = [r for r in results if isinstance(r, MemberCreditLimitError)]
    assert all(r.limit == 1_000 and r.needed == 100 for r in refused)
    holds = CreditEntry.objects.filter(kind=EntryKind.HOLD, actor=member)
    assert holds.count() == 10
    assert member_used(workspace, member) == 1_000 == -holds.aggregate(s=Sum("amount"))["s"]
    assert credits_balance(workspace=workspace) == 999_000 == entries_sum(workspace)


def test_30_concurrent_api_requests_are_refused_with_member_credit_limit_past_the_limit(
    race, standin
):
    workspace, member = race
    per_request = _hold_amount()
    credits_member_limit_set(workspace=workspace, member=member, monthly_limit=per_request * 10)

    def request(i: int):
        client = Client()
        client.force_login(member)
        response = client.post(API, json.dumps(body()), content_type="application/json")
        return response.status_code, response.json()

    results = run_in_threads(30, request)
    assert not [r for r in results if isinstance(r, Exception)], results
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {200, 402}, results
    refused = [data for status, data in results if status == 402]
    assert all(data["error"]["type"] == "member_credit_limit" for data in refused)
    charged = sum(data["credits_charged"] for status, data in results if status == 200)
    # Settled requests give back the unused part of their hold, so at least the 10 the limit
    # covers at the holds' peak get through; the real charges never pass the limit.
    assert statuses[200] >= 10 and refused
    assert member_used(workspace, member) == charged <= per_request * 10
    settled = CreditEntry.objects.filter(kind=EntryKind.SETTLE, actor=member)
    assert settled.count() == statuses[200]
    assert settled.aggregate(s=Sum("charged"))["s"] == charged
    assert not CreditEntry.objects.filter(kind=EntryKind.HOLD, closes__isnull=True).exists()
    assert credits_balance(workspace=workspace) == 1_000_000 - charged == entries_sum(workspace)
