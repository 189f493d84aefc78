"""Every table with data, in Chromium at 1280, 390 and 320 px: no word split inside itself,
no page wider than the screen, each table either inside its card or scrolling inside it, and
the usage page on a phone at most twice as tall as on a desktop."""

import datetime

import pytest
from django.utils import timezone

from api_tokens.services import Actor as TokenActor
from api_tokens.services import api_token_create
from credits.services import credits_grant, credits_hold, credits_settle
from tests.browser.conftest import DESKTOP, OUTPUT, PHONE, SMALL_PHONE, log_in, needs_chromium
from tests.factories import (
    PASSWORD,
    AIRequestFactory,
    MembershipFactory,
    UserFactory,
    WorkspaceFactory,
    support_group,
)

pytestmark = [pytest.mark.browser, needs_chromium]

SHOTS = OUTPUT / "tables"

# For every visible table: the words (runs of non-space text) whose boxes sit on more than one
# line, and whether the table sticks out of the box that holds it (its card, or the scrolling
# box around it when there is one).
MEASURE_TABLES = r"""(phone) => {
  // Shown, and not clipped away for screen readers only (a stacked table's header row).
  const visible = (el) => {
    if (!(el.offsetWidth || el.offsetHeight || el.getClientRects().length)) return false;
    for (let e = el; e; e = e.parentElement) {
      const style = getComputedStyle(e);
      if (style.clipPath !== 'none' || style.clip !== 'auto') return false;
    }
    return true;
  };
  const report = [];
  document.querySelectorAll('table').forEach((table, index) => {
    if (!visible(table)) return;
    const name = table.closest('[data-section]')?.dataset.section
      || table.id || table.className || `table ${index}`;
    const broken = [];
    // A word is a run of non-space text, across inline elements; on a phone an e-mail
    // address may wrap after its @.
    const words = phone ? /[^\s@]+@?/g : /\S+/g;
    for (const cell of table.querySelectorAll('th, td')) {
      const pieces = [];
      let text = '';
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      const block = (node) => {
        let e = node.parentElement;
        while (e !== cell && getComputedStyle(e).display.startsWith('inline')) e = e.parentElement;
        return e;
      };
      let lastBlock = null;
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!visible(node.parentElement)) continue;
        if (lastBlock && block(node) !== lastBlock) text += ' ';
        lastBlock = block(node);
        pieces.push({node, start: text.length});
        text += node.data;
      }
      const at = (offset) => {
        let piece = pieces[0];
        for (const p of pieces) { if (p.start <= offset) piece = p; }
        return [piece.node, offset - piece.start];
      };
      for (const match of text.matchAll(words)) {
        const range = document.createRange();
        range.setStart(...at(match.index));
        range.setEnd(...at(match.index + match[0].length - 1));
        range.setEnd(range.endContainer, range.endOffset + 1);
        const tops = new Set([...range.getClientRects()]
          .filter((r) => r.width > 0).map((r) => Math.round(r.top)));
        if (tops.size > 1) broken.push(match[0]);
      }
    }
    let box = table.parentElement;
    while (box && box !== document.body) {
      const style = getComputedStyle(box);
      if (['auto', 'scroll'].includes(style.overflowX) || box.classList.contains('card')
          || box.id === 'content-main' || box.id === 'changelist') break;
      box = box.parentElement;
    }
    const own = getComputedStyle(table).overflowX;
    const scrolls = ['auto', 'scroll'].includes(own) ? table : box;
    const outer = (scrolls || document.body).getBoundingClientRect();
    const inner = table.getBoundingClientRect();
    const scrolling = scrolls && ['auto', 'scroll'].includes(getComputedStyle(scrolls).overflowX);
    const sticksOut = scrolling
      ? outer.right > window.innerWidth + 1 || outer.left < -1
      : inner.right > outer.right + 1 || inner.left < outer.left - 1;
    report.push({name, broken, sticksOut, rows: table.querySelectorAll('tbody tr').length});
  });
  return report;
}"""


def _problems(page, name: str, width: int) -> list[str]:
    problems = []
    report = page.evaluate(MEASURE_TABLES, width < 640)
    if not report:
        problems.append(f"{name} @ {width}: no table shown")
    for table in report:
        if table["rows"] == 0:
            problems.append(f"{name} @ {width}: table {table['name']} has no rows")
        if table["broken"]:
            words = ", ".join(repr(w) for w in table["broken"][:6])
            problems.append(f"{name} @ {width}: {table['name']} splits words: {words}")
        if table["sticksOut"]:
            problems.append(f"{name} @ {width}: {table['name']} is wider than its card")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        problems.append(f"{name} @ {width}: the page is {overflow} px wider than the screen")
    return problems


def _open_details(page) -> None:
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")


def _height(page) -> int:
    return page.evaluate("document.documentElement.scrollHeight")


def _populate():
    workspace = WorkspaceFactory(name="Acme Analytics and Reporting", slug="acme")
    admin = MembershipFactory(
        workspace=workspace, role="admin", user__email="a.very.long.admin.name@example.com"
    ).user
    members = [
        MembershipFactory(
            workspace=workspace, role="member", user__email=f"member.{n}@example.com"
        ).user
        for n in range(3)
    ]
    support = UserFactory(email="support@example.com", is_staff=True)
    support.groups.add(support_group())
    credits_grant(workspace=workspace, amount=100_000, reason="Welcome grant for the pilot")
    now = timezone.now()
    first_of_month = now.replace(day=1, hour=9, minute=0, second=0, microsecond=0)
    models = ("claude-sonnet-5", "claude-haiku-4-5-20251001", "claude-opus-4-1")
    for n in range(24):
        user = (admin, *members)[n % 4]
        at = min(first_of_month + datetime.timedelta(hours=7 * n), now)
        source = "byok" if n % 3 == 0 else "platform"
        AIRequestFactory(
            workspace=workspace,
            user=user,
            model=models[n % 3],
            credential_source=source,
            input_tokens=12_345,
            output_tokens=6_789,
            credits_charged=0 if source == "byok" else 10_000 + n,
            latency_ms=12_345,
            at=at,
        )
        if source == "platform":
            hold = credits_hold(
                workspace=workspace, amount=12_000, idempotency_key=f"req-{n}", user=user
            )
            credits_settle(hold=hold, amount=1_000 + n)
    for name in ("Nightly reporting pipeline", "ci"):
        api_token_create(workspace=workspace, name=name, actor=TokenActor(user=admin))
    return admin, support


@pytest.mark.django_db(transaction=True)
def test_every_table_is_readable_at_1280_390_and_320_px(new_page, site_url):
    admin, support = _populate()
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    heights: dict[tuple[str, int], int] = {}

    def measure(page, name: str, path: str) -> None:
        for viewport in (DESKTOP, PHONE, SMALL_PHONE):
            width = viewport["width"]
            page.set_viewport_size(viewport)
            page.goto(f"{site_url}{path}")
            page.wait_for_load_state("load")
            heights[(name, width)] = _height(page)
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
            _open_details(page)
            problems.extend(_problems(page, name, width))

    page = new_page(viewport=DESKTOP)
    log_in(page, site_url, admin.email)
    measure(page, "usage", "/w/acme/usage/")
    measure(page, "members", "/w/acme/settings/members/")
    measure(page, "api-tokens", "/w/acme/settings/api-tokens/")
    measure(page, "workspaces", "/")

    staff = new_page(viewport=DESKTOP)
    staff.goto(f"{site_url}/admin/login/")
    staff.fill("input[name=username]", support.email)
    staff.fill("input[name=password]", PASSWORD)
    staff.click("input[type=submit]")
    staff.wait_for_url("**/admin/")
    measure(staff, "support-ledger", "/admin/credits/creditentry/")

    ratio = heights[("usage", 390)] / heights[("usage", 1280)]
    if ratio > 2:
        problems.append(
            f"usage @ 390 is {heights[('usage', 390)]} px tall, "
            f"{ratio:.1f}x its {heights[('usage', 1280)]} px on a desktop"
        )
    assert not problems, "\n".join(problems)
