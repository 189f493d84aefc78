"""Every page, in Debian's Chromium at 1280x900 and 390x844: zero axe-core WCAG 2.2 A/AA
violations, and no horizontal scrolling at 390 and 320 px. Screenshots of each page go to
test-output/pages/."""

import pytest

from ai_gateway.services import create_message
from credits.services import credits_grant
from llm_keys.models import KeyStatus, LLMKey
from llm_keys.services import Actor, llm_key_set
from tests.browser.conftest import (
    DESKTOP,
    OUTPUT,
    PHONE,
    SMALL_PHONE,
    axe_violations,
    horizontal_overflow,
    log_in,
    needs_chromium,
)
from tests.factories import (
    PASSWORD,
    MembershipFactory,
    UserFactory,
    WorkspaceFactory,
    fake_key,
    support_group,
)

pytestmark = [pytest.mark.browser, needs_chromium]

SHOTS = OUTPUT / "pages"


class Audit:
    """Visit pages at each size, audit them, keep every problem, screenshot each."""

    def __init__(self, new_page, site_url):
        self.new_page = new_page
        self.site_url = site_url
        self.problems: list[str] = []
        self.seen: list[str] = []
        SHOTS.mkdir(parents=True, exist_ok=True)

    def page_as(self, email: str | None):
        page = self.new_page(viewport=DESKTOP)
        if email:
            log_in(page, self.site_url, email)
        return page

    def check(self, page, name: str, path: str, *, then=None) -> None:
        """Open ``path`` at both sizes and audit it; ``then(page)`` runs after each load to
        bring the page into the state audited (an error shown, an answer streamed)."""
        self.seen.append(name)
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(viewport)
            page.goto(f"{self.site_url}{path}")
            if then is not None:
                then(page)
            page.wait_for_load_state("load")
            assert page.title().strip(), f"{name}: the page has no title"
            for line in axe_violations(page):
                self.problems.append(f"{name} @ {label}: {line}")
            page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
            if viewport is PHONE:
                for small in (PHONE, SMALL_PHONE):
                    page.set_viewport_size(small)
                    if (overflow := horizontal_overflow(page)) > 0:
                        self.problems.append(
                            f"{name} @ {small['width']} px: {overflow} px wider than the screen"
                        )


def _set_status(llm_key: LLMKey, status: str, *, reason: str = "", key_id: str | None = None):
    LLMKey.objects.filter(pk=llm_key.pk).update(
        status=status,
        status_reason=reason,
        **({"encryption_key_id": key_id} if key_id else {}),
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_page_passes_the_audit_on_desktop_and_phone(new_page, site_url, standin):
    workspace = WorkspaceFactory(name="Acme Analytics and Reporting", slug="acme")
    admin = MembershipFactory(
        workspace=workspace, role="admin", user__email="a.very.long.admin.name@example.com"
    ).user
    member = MembershipFactory(workspace=workspace, role="member", user__email="m@example.com")
    support = UserFactory(email="support@example.com", is_staff=True)
    support.groups.add(support_group())
    credits_grant(workspace=workspace, amount=250_000, reason="Welcome grant")
    for prompt in ("Hello there", "Write a haiku about ledgers"):
        create_message(
            workspace=workspace,
            user=admin,
            model="claude-sonnet-5",
            messages=[{"role": "user", "content": prompt}],
            max_tokens=256,
        )
    audit = Audit(new_page, site_url)

    anonymous = audit.page_as(None)
    audit.check(anonymous, "login", "/login/")
    audit.check(
        anonymous,
        "login-error",
        "/login/",
        then=lambda p: (
            p.fill("input[name=username]", "nobody@example.com"),
            p.fill("input[name=password]", "wrong"),
            p.click("button[type=submit]"),
            p.wait_for_selector("[data-error-summary]"),
        ),
    )
    audit.check(anonymous, "404", "/w/nowhere/")

    page = audit.page_as(admin.email)
    audit.check(page, "home", "/")
    audit.check(page, "workspace-home", "/w/acme/")
    audit.check(page, "settings-no-key", "/w/acme/settings/llm-key/")
    audit.check(
        page,
        "settings-save-error",
        "/w/acme/settings/llm-key/",
        then=lambda p: (
            p.fill("input[name=api_key]", "not-a-key"),
            p.click("text=Save changes"),
            p.wait_for_selector("[data-error-summary]"),
        ),
    )
    audit.check(page, "usage", "/w/acme/usage/")
    audit.check(page, "members", "/w/acme/settings/members/")
    audit.check(page, "api-tokens", "/w/acme/settings/api-tokens/")
    audit.check(page, "try-ai-platform", "/w/acme/ai/")

    llm_key = llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin))
    assert llm_key.status == KeyStatus.VALID
    audit.check(page, "settings-valid", "/w/acme/settings/llm-key/")
    _set_status(llm_key, KeyStatus.UNVERIFIED, reason="Anthropic could not be reached.")
    audit.check(page, "settings-unverified", "/w/acme/settings/llm-key/")
    _set_status(llm_key, KeyStatus.VALID, key_id="gone")
    audit.check(page, "settings-undecryptable", "/w/acme/settings/llm-key/")
    _set_status(
        llm_key, KeyStatus.INVALID, reason="Rejected by Anthropic: revoked, expired or mistyped."
    )
    audit.check(page, "settings-invalid", "/w/acme/settings/llm-key/")
    audit.check(page, "try-ai-invalid-key", "/w/acme/ai/")

    _set_status(llm_key, KeyStatus.VALID, reason="", key_id=llm_key.encryption_key_id)

    def streamed_answer(p):
        p.fill("textarea[name=prompt]", "Say hello")
        p.click("[data-send]")
        p.wait_for_selector("[data-live-credits-charged]")

    audit.check(page, "try-ai-answered", "/w/acme/ai/", then=streamed_answer)

    member_page = audit.page_as(member.user.email)
    audit.check(member_page, "403-member-on-settings", "/w/acme/settings/llm-key/")
    audit.check(member_page, "usage-member", "/w/acme/usage/")

    staff = audit.page_as(None)
    audit.check(staff, "admin-login", "/admin/login/")
    staff.goto(f"{site_url}/admin/login/")
    staff.fill("input[name=username]", support.email)
    staff.fill("input[name=password]", PASSWORD)
    staff.click("input[type=submit]")
    staff.wait_for_url("**/admin/")
    for name, path in (
        ("admin-index", "/admin/"),
        ("admin-workspaces", "/admin/workspaces/workspace/"),
        ("admin-workspaces-search", "/admin/workspaces/workspace/?q=m%40example.com"),
        ("admin-workspace", f"/admin/workspaces/workspace/{workspace.pk}/change/"),
        ("admin-llm-keys", "/admin/llm_keys/llmkey/"),
        ("admin-llm-key", f"/admin/llm_keys/llmkey/{llm_key.pk}/change/"),
        ("admin-llm-key-remove", f"/admin/llm_keys/llmkey/{llm_key.pk}/remove/"),
        ("admin-key-events", "/admin/llm_keys/keyevent/"),
        ("admin-ledger", "/admin/credits/creditentry/"),
        ("admin-grant", f"/admin/credits/creditentry/grant/?workspace={workspace.pk}"),
        ("admin-ai-requests", "/admin/ai_gateway/airequest/"),
    ):
        audit.check(staff, name, path)

    assert not audit.problems, "\n".join(audit.problems)
    assert len(audit.seen) >= 25
