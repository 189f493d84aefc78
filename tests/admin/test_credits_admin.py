"""Support sees the ledger's shortfalls (usage above the hold the balance could not cover),
member limits and balance alerts, read-only."""

from django.urls import reverse

from credits.models import CreditEntry, EntryKind
from credits.services import (
    credits_grant,
    credits_hold,
    credits_member_limit_set,
    credits_settle,
)


def test_support_sees_a_shortfall_in_the_ledger_and_can_filter_on_it(
    support_client, workspace, member_user
):
    credits_grant(workspace=workspace, amount=1_100, reason="Test")
    covered = credits_hold(workspace=workspace, amount=1_000, idempotency_key="req-0")
    credits_settle(hold=covered, amount=1_000)  # fully covered: no shortfall
    hold = credits_hold(workspace=workspace, amount=60, idempotency_key="req-1")
    settle = credits_settle(hold=hold, amount=150)  # 40 collected, 50 not covered
    assert settle.written_off == 50

    url = reverse("admin:credits_creditentry_changelist")
    html = support_client.get(url).content.decode()
    assert "Written off" in html and "Charged" in html
    shortfalls = support_client.get(url, {"shortfall": "yes"})
    assert shortfalls.status_code == 200
    assert list(shortfalls.context["cl"].result_list) == [settle]
    assert CreditEntry.objects.filter(kind=EntryKind.SETTLE).count() == 2
    detail = support_client.get(reverse("admin:credits_creditentry_change", args=[settle.pk]))
    assert "Written off" in detail.content.decode()


def test_support_sees_member_limits_read_only(support_client, workspace, member_user):
    row = credits_member_limit_set(workspace=workspace, member=member_user, monthly_limit=2_000)
    response = support_client.get(reverse("admin:credits_membercreditlimit_changelist"))
    assert response.status_code == 200 and "member@example.com" in response.content.decode()
    assert (
        support_client.get(reverse("admin:credits_creditlimitevent_changelist")).status_code == 200
    )
    assert support_client.get(reverse("admin:credits_creditalert_changelist")).status_code == 200
    change = support_client.post(
        reverse("admin:credits_membercreditlimit_change", args=[row.pk]), {"monthly_limit": 9}
    )
    assert change.status_code == 403


def test_support_sees_the_prices_a_request_was_charged_at(support_client, workspace):
    from ai_gateway.models import AIRequest
    from credits.pricing import get_price

    row = AIRequest.objects.create(
        workspace=workspace,
        provider="anthropic",
        model="claude-sonnet-4-5",
        credential_source="platform",
        outcome="ok",
        credits_charged=15_003,
        prices=get_price("claude-sonnet-4-5").snapshot(),
    )

    html = support_client.get(f"/admin/ai_gateway/airequest/{row.pk}/change/").content.decode()
    assert "Prices" in html
    assert "&quot;long_context_above_input_tokens&quot;: 200000" in html
