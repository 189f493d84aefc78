"""Try AI's status endpoint: who pays next, the balance, why sending is off, and the charge of
the reader's own request (what the page shows after a request without a reload)."""

import pytest

from ai_gateway.models import AIRequest, CredentialSource, Outcome
from llm_keys.services import Actor, llm_key_record_check
from providers import CheckOutcome, CheckResult
from tests.factories import MembershipFactory

STATUS = "/w/acme/ai/status/"


def _row(workspace, user, request_id, **fields):
    return AIRequest.objects.create(
        workspace=workspace,
        user=user,
        provider="anthropic",
        model="claude-x",
        credential_source=CredentialSource.PLATFORM,
        outcome=Outcome.CLIENT_DISCONNECTED,
        provider_request_id=request_id,
        **fields,
    )


def _found_invalid_by_the_sweep(saved_key):
    llm_key_record_check(
        llm_key=saved_key,
        result=CheckResult(outcome=CheckOutcome.INVALID, reason="Anthropic: invalid x-api-key"),
        actor=Actor(label="system (periodic check)"),
    )


def test_status_refuses_outsiders_and_anonymous(outsider_client, client, workspace):
    assert outsider_client.get(STATUS).status_code == 404
    anonymous = client.get(STATUS)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_status_gives_who_pays_and_the_balance(member_client, workspace, funded):
    data = member_client.get(STATUS).json()
    assert data["credential_source"] == "platform"
    assert data["credits_balance"] == funded
    assert f'data-credits-balance="{funded}"' in data["who_pays_html"]
    assert data["send_blocked_html"] == ""
    assert data["request"] is None


@pytest.mark.django_db
def test_a_member_is_told_what_found_the_key_and_which_admins_to_ask(
    member_client, workspace, saved_key, admin_user
):
    admin_user.first_name, admin_user.last_name = "Ada", "Lovelace"
    admin_user.save()
    MembershipFactory(workspace=workspace, role="admin", user__email="second@example.com")
    _found_invalid_by_the_sweep(saved_key)

    data = member_client.get(STATUS).json()

    assert data["credential_source"] == "none"
    blocked = data["send_blocked_html"]
    assert "the periodic check found it invalid" in blocked
    assert "Ada Lovelace &lt;admin@example.com&gt;" in blocked
    assert "second@example.com" in blocked
    assert "/settings/llm-key/" not in blocked  # a page the member may not open


def test_an_admin_is_given_the_key_page_instead(admin_client, workspace, saved_key):
    _found_invalid_by_the_sweep(saved_key)

    blocked = admin_client.get(STATUS).json()["send_blocked_html"]

    assert "the periodic check found it invalid" in blocked
    assert 'href="/w/acme/settings/llm-key/"' in blocked
    assert "ask" not in blocked


def test_status_gives_the_charge_of_the_readers_own_request_only(
    member_client, workspace, member_user, admin_user
):
    _row(workspace, member_user, "req_mine", input_tokens=512, output_tokens=3, credits_charged=7)
    _row(workspace, admin_user, "req_theirs", input_tokens=9, output_tokens=9, credits_charged=9)

    mine = member_client.get(STATUS, {"request_id": "req_mine"}).json()["request"]
    theirs = member_client.get(STATUS, {"request_id": "req_theirs"}).json()["request"]

    assert mine == {
        "outcome": "client_disconnected",
        "credential_source": "platform",
        "input_tokens": 512,
        "output_tokens": 3,
        "credits_charged": 7,
    }
    assert theirs is None


def test_a_charge_is_never_given_with_a_balance_read_before_it(
    member_client, workspace, member_user, funded, monkeypatch
):
    """The page shows the balance of the response that first names the request's row: that
    balance must include the row's charge. Here the settlement commits (its row, and a change
    of balance) just after the view reads the balance."""
    from ai_gateway import views
    from credits.selectors import credits_balance
    from credits.services import credits_grant

    real_balance = views.credits_balance

    def settled_right_after(*, workspace):
        balance = real_balance(workspace=workspace)
        if not AIRequest.objects.filter(provider_request_id="req_racing").exists():
            _row(workspace, member_user, "req_racing", credits_charged=7)
            credits_grant(workspace=workspace, amount=50, reason="balance moves")
        return balance

    monkeypatch.setattr(views, "credits_balance", settled_right_after)

    asked = [member_client.get(STATUS, {"request_id": "req_racing"}).json() for _ in range(2)]

    for data in asked:
        if data["request"] is not None:
            assert data["credits_balance"] == credits_balance(workspace=workspace) == funded + 50
    assert asked[-1]["request"] is not None  # named once the row was there before the read
