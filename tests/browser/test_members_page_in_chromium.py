"""The members page in a real browser: an admin sets a member's monthly credit limit."""

import pytest

from credits.models import MemberCreditLimit
from credits.services import credits_grant, credits_hold
from tests.factories import PASSWORD, MembershipFactory, WorkspaceFactory

from .conftest import OUTPUT, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.mark.django_db(transaction=True)
def test_admin_sets_a_member_limit_and_sees_usage(live_server, browser_page, settings):
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = 100_000
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    MembershipFactory(workspace=workspace, role="admin", user__email="admin@example.com")
    member = MembershipFactory(
        workspace=workspace, role="member", user__email="member@example.com"
    ).user
    credits_grant(workspace=workspace, amount=5_000, reason="Test")  # low: below 10 %
    credits_hold(workspace=workspace, amount=1_234, idempotency_key="req-1", user=member)
    page = browser_page

    page.goto(f"{live_server.url}/w/acme/settings/members/")
    page.fill("input[name=username]", "admin@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/w/acme/settings/members/")
    row = page.locator("tr[data-member='member@example.com']")
    assert row.locator("[data-used]").inner_text() == "1,234"
    assert "No limit" in row.locator("[data-limit]").inner_text()

    # A negative limit is refused in place with a message; nothing is saved.
    row.locator("input[value=amount]").check()
    row.locator("input[name=monthly_limit]").fill("-5")
    row.locator("text=Save limit").click()
    page.wait_for_selector(".field-error")
    assert "cannot be negative" in page.locator(".field-error").inner_text()
    assert not MemberCreditLimit.objects.exists()

    # Typing a number is choosing "Limit of": the limit is not lost to the other choice.
    row = page.locator("tr[data-member='member@example.com']")
    row.locator("input[value=default]").check()
    row.locator("input[name=monthly_limit]").fill("2000")
    assert row.locator("input[value=amount]").is_checked()
    row.locator("text=Save limit").click()
    page.wait_for_selector("text=member@example.com now has a monthly limit of 2,000 credits")
    row = page.locator("tr[data-member='member@example.com']")
    assert row.locator("[data-limit]").get_attribute("data-limit") == "2000"
    assert "766 left" in row.locator("[data-limit]").inner_text()
    assert MemberCreditLimit.objects.get(user=member).monthly_limit == 2_000

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "members-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
