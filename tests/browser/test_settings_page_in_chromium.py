"""The settings page in a real browser: Debian's Chromium driven by Playwright."""

import pytest

from llm_keys.models import KeyStatus, LLMKey
from tests.browser.conftest import OUTPUT, needs_chromium
from tests.factories import PASSWORD, MembershipFactory, WorkspaceFactory, fake_key

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.mark.django_db(transaction=True)
def test_admin_logs_in_saves_a_key_and_sees_mask_and_status(live_server, browser_page, standin):
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    MembershipFactory(workspace=workspace, role="admin", user__email="admin@example.com")
    page = browser_page
    raw = fake_key()

    page.goto(f"{live_server.url}/w/acme/settings/llm-key/")
    assert "/login/" in page.url
    page.fill("input[name=username]", "admin@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/w/acme/settings/llm-key/")
    assert page.locator("[data-credential-source=platform]").is_visible()

    # A malformed key is refused in place, and nothing is sent to the provider.
    page.fill("input[name=api_key]", "not-a-key")
    page.click("text=Save changes")
    assert "Anthropic keys start with" in page.locator(".field-error").inner_text()
    assert page.input_value("input[name=api_key]") == ""
    assert standin.requests == []

    page.select_option("select[name=provider]", "anthropic")
    page.fill("input[name=api_key]", raw)
    page.click("text=Save changes")
    page.wait_for_selector("[data-key-status]")

    badge = page.locator("[data-key-status]")
    assert badge.get_attribute("data-key-status") == "valid"
    assert badge.inner_text() == "Valid"
    assert page.locator("[data-key-hint]").inner_text() == f"sk-ant-…{raw[-4:]}"
    assert page.locator("[data-credential-source=byok]").is_visible()
    assert page.input_value("input[name=api_key]") == ""
    assert raw not in page.content()
    assert standin.keys_seen() == [raw]
    assert LLMKey.objects.get().status == KeyStatus.VALID

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "llm-key-settings.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # Revoked at the provider: "Check now" turns the badge red and shows the banner.
    standin.set_behavior(raw, "revoked")
    page.click("text=Check now")
    page.wait_for_selector("[data-key-status=invalid]")
    assert page.locator("[data-banner=llm-key-invalid]").is_visible()
    page.screenshot(path=str(OUTPUT / "llm-key-invalid.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Remove key")
    page.wait_for_selector("[data-credential-source=platform]")
    assert not LLMKey.objects.exists()
