"""Member credit limits: the ledger's refusal, the members page, the command, the gateway."""

import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from ai_gateway.models import AIRequest
from credits import pricing
from credits.exceptions import InsufficientCreditsError, MemberCreditLimitError
from credits.models import (
    CreditEntry,
    CreditLimitEvent,
    EntryKind,
    MemberCreditLimit,
    MemberCreditUsage,
    MemberLimitDefault,
)
from credits.selectors import member_credits_rows
from credits.services import (
    credits_grant,
    credits_hold,
    credits_member_limit_default_set,
    credits_member_limit_set,
    credits_release,
    credits_settle,
)
from tests.ai_gateway.helpers import MODEL, body, post
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db
URL = "/w/acme/settings/members/"


def used(workspace, user) -> int:
    return (
        MemberCreditUsage.objects.filter(workspace=workspace, user=user).aggregate(s=Sum("used"))[
            "s"
        ]
        or 0
    )


@pytest.fixture
def funded(workspace):
    credits_grant(workspace=workspace, amount=1_000_000, reason="Test")
    return workspace


# --- the ledger ------------------------------------------------------------------------


def test_a_hold_counts_against_the_limit_a_release_gives_it_back_a_settle_keeps_the_charge(
    funded, member_user
):
    credits_member_limit_set(workspace=funded, member=member_user, monthly_limit=500)
    hold = credits_hold(workspace=funded, amount=300, idempotency_key="a", user=member_user)
    assert used(funded, member_user) == 300
    credits_settle(hold=hold, amount=120)
    assert used(funded, member_user) == 120
    second = credits_hold(workspace=funded, amount=380, idempotency_key="b", user=member_user)
    assert used(funded, member_user) == 500
    credits_release(hold=second)
    assert used(funded, member_user) == 120


def test_the_months_counter_is_created_by_the_first_hold_and_only_updated_after(
    funded, member_user
):
    def counter_inserts(key: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            credits_hold(workspace=funded, amount=10, idempotency_key=key, user=member_user)
        return sum(
            query["sql"].startswith("INSERT") and "membercreditusage" in query["sql"]
            for query in queries.captured_queries
        )

    assert counter_inserts("first") == 1
    assert counter_inserts("second") == 0
    assert counter_inserts("third") == 0
    assert MemberCreditUsage.objects.filter(workspace=funded, user=member_user).count() == 1
    assert used(funded, member_user) == 30


def test_a_hold_over_the_remaining_limit_is_refused_and_changes_nothing(funded, member_user):
    credits_member_limit_set(workspace=funded, member=member_user, monthly_limit=500)
    credits_hold(workspace=funded, amount=400, idempotency_key="a", user=member_user)
    with pytest.raises(MemberCreditLimitError) as excinfo:
        credits_hold(workspace=funded, amount=101, idempotency_key="b", user=member_user)
    error = excinfo.value
    assert (error.limit, error.used, error.needed) == (500, 400, 101)
    message = str(error)
    assert "500" in message and "400" in message and "admin" in message
    assert "Members" in message  # says where the limit is changed
    assert used(funded, member_user) == 400
    assert not CreditEntry.objects.filter(idempotency_key="b").exists()
    # The limit is per member: another member is not affected.
    other = MembershipFactory(workspace=funded, role="member").user
    credits_hold(workspace=funded, amount=900, idempotency_key="c", user=other)


def test_no_limit_still_counts_usage_and_a_zero_limit_refuses_everything(funded, member_user):
    credits_hold(workspace=funded, amount=300, idempotency_key="a", user=member_user)
    assert used(funded, member_user) == 300
    credits_member_limit_set(workspace=funded, member=member_user, monthly_limit=0)
    with pytest.raises(MemberCreditLimitError):
        credits_hold(workspace=funded, amount=1, idempotency_key="b", user=member_user)


def test_a_refusal_by_the_balance_gives_the_limit_back(workspace, member_user):
    credits_grant(workspace=workspace, amount=100, reason="Test")
    credits_member_limit_set(workspace=workspace, member=member_user, monthly_limit=1_000)
    with pytest.raises(InsufficientCreditsError):
        credits_hold(workspace=workspace, amount=200, idempotency_key="a", user=member_user)
    assert used(workspace, member_user) == 0


def test_usage_above_the_hold_is_counted_as_charged(workspace, member_user):
    credits_grant(workspace=workspace, amount=100, reason="Test")
    hold = credits_hold(workspace=workspace, amount=60, idempotency_key="a", user=member_user)
    entry = credits_settle(hold=hold, amount=150)
    assert (entry.charged, entry.written_off) == (100, 50)
    assert used(workspace, member_user) == 100


def test_a_repeated_hold_key_counts_once(funded, member_user):
    first = credits_hold(workspace=funded, amount=300, idempotency_key="a", user=member_user)
    again = credits_hold(workspace=funded, amount=300, idempotency_key="a", user=member_user)
    assert again.pk == first.pk
    assert used(funded, member_user) == 300


def test_usage_is_counted_in_the_month_of_the_hold(funded, member_user, monkeypatch):
    from django.utils import timezone

    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - datetime.timedelta(days=40))
    old = credits_hold(workspace=funded, amount=300, idempotency_key="a", user=member_user)
    monkeypatch.setattr(timezone, "now", real_now)
    credits_release(hold=old)
    assert used(funded, member_user) == 0
    assert MemberCreditUsage.objects.get(user=member_user).month == old.created_at.date().replace(
        day=1
    )


def test_the_equal_share_default_splits_the_allowance_and_a_member_limit_wins(
    funded, admin_user, member_user, settings
):
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = 1_000
    credits_member_limit_default_set(workspace=funded, default=MemberLimitDefault.EQUAL_SHARE)
    with pytest.raises(MemberCreditLimitError) as excinfo:
        credits_hold(workspace=funded, amount=501, idempotency_key="a", user=member_user)
    assert excinfo.value.limit == 500
    assert "default" in str(excinfo.value)
    credits_member_limit_set(workspace=funded, member=member_user, monthly_limit=None)
    credits_hold(workspace=funded, amount=900, idempotency_key="b", user=member_user)
    credits_member_limit_set(
        workspace=funded, member=member_user, monthly_limit=0, use_default=True
    )
    assert not MemberCreditLimit.objects.filter(user=member_user).exists()
    rows = {row.membership.user.email: row for row in member_credits_rows(workspace=funded)}
    assert (rows["member@example.com"].limit, rows["member@example.com"].used) == (500, 900)
    assert rows["member@example.com"].remaining == 0


def test_a_limit_for_someone_outside_the_workspace_is_refused(workspace, outsider_user):
    from credits.exceptions import CreditsError

    with pytest.raises(CreditsError, match="not a member"):
        credits_member_limit_set(workspace=workspace, member=outsider_user, monthly_limit=5)
    assert not MemberCreditLimit.objects.exists()


# --- the members page ----------------------------------------------------------------------


def test_members_page_checks_access(client, outsider_client, member_client, workspace):
    assert outsider_client.get(URL).status_code == 404
    assert member_client.get(URL).status_code == 403
    assert member_client.post(URL, {"member": 1, "mode": "none"}).status_code == 403
    response = client.get(URL)
    assert response.status_code == 302 and "/login" in response["Location"]


def test_members_page_lists_members_roles_usage_and_limits(
    admin_client, funded, admin_user, member_user
):
    credits_member_limit_set(workspace=funded, member=member_user, monthly_limit=5_000)
    credits_hold(workspace=funded, amount=1_234, idempotency_key="a", user=member_user)
    response = admin_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "admin@example.com" in html and "member@example.com" in html
    assert 'data-used="1234"' in html and 'data-limit="5000"' in html
    assert 'data-limit="none"' in html  # the admin has no limit
    assert "Admin" in html and "Member" in html


def test_an_admin_sets_and_clears_a_member_limit(admin_client, workspace, admin_user, member_user):
    response = admin_client.post(
        URL, {"member": member_user.pk, "mode": "amount", "monthly_limit": "2500"}
    )
    assert response.status_code == 302
    assert MemberCreditLimit.objects.get(user=member_user).monthly_limit == 2_500
    event = CreditLimitEvent.objects.get()
    assert event.actor == admin_user and "2,500" in event.description

    admin_client.post(URL, {"member": member_user.pk, "mode": "none"})
    assert MemberCreditLimit.objects.get(user=member_user).monthly_limit is None
    admin_client.post(URL, {"member": member_user.pk, "mode": "default"})
    assert not MemberCreditLimit.objects.filter(user=member_user).exists()
    assert CreditLimitEvent.objects.count() == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mode": "amount", "monthly_limit": ""}, "Enter a monthly limit"),
        ({"mode": "amount", "monthly_limit": "-5"}, "cannot be negative"),
        ({"mode": "amount", "monthly_limit": "lots"}, "whole number"),
    ],
)
def test_a_bad_limit_is_refused_with_a_clear_message(admin_client, member_user, data, message):
    response = admin_client.post(URL, {"member": member_user.pk, **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not MemberCreditLimit.objects.exists()


@pytest.mark.parametrize("mode", ["default", "none"])
def test_a_typed_limit_under_another_choice_is_refused_not_dropped(admin_client, member_user, mode):
    response = admin_client.post(
        URL, {"member": member_user.pk, "mode": mode, "monthly_limit": "2000"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "is saved" not in html
    assert "You typed 2,000 credits" in html and "choose “Limit of”" in html
    # The page keeps what was typed and chosen, for the admin to correct.
    assert 'value="2000"' in html
    assert f'name="mode" value="{mode}" checked' in html
    assert not MemberCreditLimit.objects.exists()


def test_a_saved_limit_says_what_was_saved(admin_client, member_user):
    response = admin_client.post(
        URL, {"member": member_user.pk, "mode": "amount", "monthly_limit": "2000"}, follow=True
    )
    assert f"{member_user.email} now has a monthly limit of 2,000 credits" in (
        response.content.decode()
    )
    response = admin_client.post(URL, {"member": member_user.pk, "mode": "none"}, follow=True)
    assert f"{member_user.email} now has no monthly limit" in response.content.decode()
    response = admin_client.post(URL, {"member": member_user.pk, "mode": "default"}, follow=True)
    assert f"{member_user.email} now follows the workspace default" in (response.content.decode())


def test_a_limit_for_a_non_member_is_refused_on_the_page(admin_client, outsider_user):
    response = admin_client.post(URL, {"member": outsider_user.pk, "mode": "none"})
    assert response.status_code == 400
    assert "not a member" in response.content.decode()
    assert not MemberCreditLimit.objects.exists()


def test_an_admin_sets_the_workspace_default(admin_client, workspace):
    response = admin_client.post(URL, {"action": "default", "default": "equal_share"})
    assert response.status_code == 302
    assert workspace.credit_account.member_limit_default == MemberLimitDefault.EQUAL_SHARE
    response = admin_client.post(URL, {"action": "default", "default": "half"})
    assert response.status_code == 400


# --- the command ----------------------------------------------------------------------------


def test_the_command_sets_and_removes_a_limit(workspace, member_user):
    out = StringIO()
    call_command("set_member_credit_limit", "acme", "MEMBER@example.com", "5_000", stdout=out)
    assert MemberCreditLimit.objects.get(user=member_user).monthly_limit == 5_000
    assert "5,000" in out.getvalue()
    call_command("set_member_credit_limit", "acme", "member@example.com", "none", stdout=out)
    assert MemberCreditLimit.objects.get(user=member_user).monthly_limit is None
    assert CreditLimitEvent.objects.filter(actor_label__contains="operator").count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "member@example.com", "5"], "No workspace"),
        (["acme", "nobody@example.com", "5"], "not a member"),
        (["acme", "outsider@example.com", "5"], "not a member"),
        (["acme", "member@example.com", "-1"], "cannot be negative"),
        (["acme", "member@example.com", "many"], "whole number"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(member_user, outsider_user, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("set_member_credit_limit", *args)
    assert not MemberCreditLimit.objects.exists()


# --- the gateway ----------------------------------------------------------------------------


def _hold_amount() -> int:
    data = body()
    return pricing.max_cost(
        pricing.get_price(MODEL),
        input_tokens=pricing.estimate_request_input_tokens(data),
        max_tokens=data["max_tokens"],
    )


def test_the_gateway_refuses_a_request_over_the_limit_with_402_before_the_provider(
    member_client, funded, member_user, standin
):
    credits_member_limit_set(workspace=funded, member=member_user, monthly_limit=_hold_amount() - 1)
    response = post(member_client, body())
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["type"] == "member_credit_limit"
    assert "limit" in error["message"] and "admin" in error["message"]
    assert standin.requests == []
    row = AIRequest.objects.get()
    assert (row.error_type, row.credits_charged) == ("member_credit_limit", 0)
    assert not CreditEntry.objects.filter(kind=EntryKind.HOLD).exists()


def test_the_gateway_counts_a_members_real_charge(member_client, funded, member_user, standin):
    credits_member_limit_set(workspace=funded, member=member_user, monthly_limit=_hold_amount())
    response = post(member_client, body())
    assert response.status_code == 200
    assert used(funded, member_user) == response.json()["credits_charged"] > 0


def test_byok_requests_are_not_limited(member_client, workspace, saved_key, member_user, standin):
    credits_member_limit_set(workspace=workspace, member=member_user, monthly_limit=0)
    response = post(member_client, body())
    assert response.status_code == 200
    assert response.json()["credential_source"] == "byok"
    assert used(workspace, member_user) == 0


def test_the_members_page_takes_the_same_queries_for_many_members(
    admin_client, funded, member_user, django_assert_max_num_queries
):
    with django_assert_max_num_queries(20) as few:
        assert admin_client.get(URL).status_code == 200
    for _ in range(10):
        other = MembershipFactory(workspace=funded, role="member").user
        credits_member_limit_set(workspace=funded, member=other, monthly_limit=100)
        credits_hold(workspace=funded, amount=10, idempotency_key=f"k-{other.pk}", user=other)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert admin_client.get(URL).status_code == 200
