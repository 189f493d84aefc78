"""The API tokens page in a real browser: create (shown once, copied), then revoke."""

import pytest

from api_tokens.services import api_token_authenticate
from tests.browser.conftest import OUTPUT, needs_chromium
from tests.factories import PASSWORD, MembershipFactory, WorkspaceFactory

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.mark.django_db(transaction=True)
def test_admin_creates_copies_and_revokes_a_token(live_server, browser_page):
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    MembershipFactory(workspace=workspace, role="admin", user__email="admin@example.com")
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    page.goto(f"{live_server.url}/w/acme/settings/api-tokens/")
    page.fill("input[name=username]", "admin@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/w/acme/settings/api-tokens/")

    page.click("text=Create token")  # no name: refused in place
    assert "Give the token a name" in page.locator(".field-error").inner_text()

    page.fill("input[name=name]", "copilot service")
    page.click("text=Create token")
    page.wait_for_selector("[data-new-token]")
    raw = page.input_value("[data-new-token]")
    assert raw.startswith("byok_")
    assert "will not be shown again" in page.locator("[data-section=created]").inner_text()
    page.click("[data-copy-target]")
    page.wait_for_selector("[data-copy-status]:not(:empty)")
    assert page.evaluate("navigator.clipboard.readText()") == raw
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "api-token-created.png"), full_page=True)
    assert api_token_authenticate(raw_token=raw) is not None

    page.goto(f"{live_server.url}/w/acme/settings/api-tokens/")  # shown once only
    assert raw not in page.content()
    assert f"…{raw[-4:]}" in page.locator("[data-live=true]").inner_text()

    page.click("text=Revoke…")
    page.wait_for_selector("[data-section=confirm]")
    page.click("button:has-text('Revoke token')")
    page.wait_for_selector("[data-live=false]")
    assert "is revoked" in page.locator(".messages").inner_text()
    assert api_token_authenticate(raw_token=raw) is None
