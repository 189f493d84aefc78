"""The usage page in a real browser: the vendored chart draws, the period picker changes the
figures, and the table carries the same numbers."""

import datetime

import pytest

from tests.browser.conftest import OUTPUT, needs_chromium
from tests.factories import PASSWORD, AIRequestFactory, MembershipFactory, WorkspaceFactory

pytestmark = [pytest.mark.browser, needs_chromium]

# Counts the pixels the chart painted: a blank canvas has none.
PAINTED_PIXELS = """() => {
  const canvas = document.getElementById('usage-chart');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) painted++; }
  return painted;
}"""


def _day(days_ago: int) -> datetime.datetime:
    today = datetime.datetime.now(datetime.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return today - datetime.timedelta(days=days_ago)


@pytest.mark.django_db(transaction=True)
def test_admin_sees_the_chart_and_the_period_picker_changes_the_figures(
    live_server, browser_page, standin
):
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    admin = MembershipFactory(workspace=workspace, role="admin", user__email="admin@example.com")
    this_month = _day(0).replace(day=1)
    for hour in range(3):
        AIRequestFactory(
            workspace=workspace,
            user=admin.user,
            credits_charged=40,
            at=this_month + datetime.timedelta(hours=hour),
        )
    AIRequestFactory(
        workspace=workspace,
        user=admin.user,
        credential_source="byok",
        at=this_month + datetime.timedelta(hours=5),
    )
    last_month = this_month - datetime.timedelta(days=3)
    AIRequestFactory(workspace=workspace, user=admin.user, credits_charged=7, at=last_month)
    page = browser_page

    page.goto(f"{live_server.url}/w/acme/usage/")
    page.fill("input[name=username]", "admin@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/w/acme/usage/")
    page.wait_for_selector("#usage-chart[data-chart-ready=requests]")

    assert page.evaluate(PAINTED_PIXELS) > 500
    assert page.get_attribute("[data-total-requests]", "data-total-requests") == "4"
    assert page.get_attribute("[data-total-credits]", "data-total-credits") == "120"
    page.click("[data-day-table] summary")
    first_day = page.locator(f"tr[data-day='{this_month.date().isoformat()}'] td")
    assert first_day.all_inner_texts() == ["1", "3", "150", "450", "120"]
    page.click("[data-chart-metric=credits]")
    page.wait_for_selector("#usage-chart[data-chart-ready=credits]")
    assert page.evaluate(PAINTED_PIXELS) > 500
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "usage-page-this-month.png"), full_page=True)

    page.click("[data-quick-pick=last-month]")
    page.wait_for_selector("#usage-chart[data-chart-ready=requests]")
    assert page.get_attribute("[data-total-requests]", "data-total-requests") == "1"
    assert page.get_attribute("[data-total-credits]", "data-total-credits") == "7"
    assert page.locator("[data-quick-pick=last-month]").get_attribute("aria-current") == "true"

    # The date inputs pick any period; a reversed one is refused on the page, not a 500.
    page.fill("input[name=from]", this_month.date().isoformat())
    page.fill("input[name=to]", (this_month - datetime.timedelta(days=1)).date().isoformat())
    with page.expect_response(lambda r: "/usage/?" in r.url) as answer:
        page.click("text=Show")
    assert answer.value.status == 400
    assert "The period starts after it ends" in page.inner_text("[data-period-error]")
    page.screenshot(path=str(OUTPUT / "usage-page-bad-period.png"), full_page=True)
