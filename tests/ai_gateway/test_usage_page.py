"""The usage page over a period (§14): totals, days, models, members, the BYOK cost estimate,
the one-line ledger, and its query count."""

import datetime
import re
from decimal import Decimal
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ai_gateway import usage_views
from ai_gateway.usage_days import ai_usage_days_build
from credits.models import CreditEntry, EntryKind
from credits.selectors import credits_balance
from credits.services import credits_adjust, credits_grant, credits_refund
from tests.ai_gateway.helpers import body, post
from tests.factories import AIRequestFactory, MembershipFactory, UserFactory

PAGE = "/w/acme/usage/"
UTC = datetime.UTC


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


@pytest.fixture
def today(monkeypatch):
    day = datetime.date(2026, 11, 15)
    monkeypatch.setattr(usage_views, "today_utc", lambda: day)
    return day


def number(html: str, attribute: str) -> int:
    match = re.search(rf'{attribute}="(-?\d+)"', html)
    assert match, f"{attribute} not on the page"
    return int(match.group(1))


# --- access -----------------------------------------------------------------------------------


def test_outsiders_get_404_and_anonymous_visitors_the_login_page(
    outsider_client, client, workspace
):
    assert outsider_client.get(PAGE).status_code == 404
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_page_answers_get_only(admin_client, workspace):
    assert admin_client.post(PAGE).status_code == 405


# --- the period -------------------------------------------------------------------------------


def test_default_period_is_this_calendar_month_with_utc_midnight_boundaries(
    admin_client, admin_user, workspace, today
):
    for moment in (
        at(2026, 10, 31, 23, 59, 59, 999999),  # last instant of October: out
        at(2026, 11, 1),  # first instant of November: in
        at(2026, 11, 30, 23, 59, 59, 999999),  # last instant of November: in
        at(2026, 12, 1),  # first instant of December: out
    ):
        AIRequestFactory(workspace=workspace, user=admin_user, at=moment)

    html = admin_client.get(PAGE).content.decode()

    assert number(html, "data-total-requests") == 2
    assert 'value="2026-11-01"' in html and 'value="2026-11-30"' in html
    assert html.count("<tr data-day=") == 30
    assert 'data-day="2026-11-01"' in html and 'data-day="2026-11-30"' in html


def test_to_is_inclusive_and_one_day_is_a_period(admin_client, admin_user, workspace, today):
    AIRequestFactory(workspace=workspace, user=admin_user, at=at(2026, 11, 30, 0, 0))
    AIRequestFactory(workspace=workspace, user=admin_user, at=at(2026, 11, 30, 23, 59))
    AIRequestFactory(workspace=workspace, user=admin_user, at=at(2026, 11, 29, 23, 59))

    html = admin_client.get(PAGE + "?from=2026-11-30&to=2026-11-30").content.decode()

    assert number(html, "data-total-requests") == 2
    assert html.count("<tr data-day=") == 1


def test_quick_picks_offer_this_month_last_month_and_the_last_30_days(admin_client, today):
    html = admin_client.get(PAGE).content.decode()

    assert 'href="?from=2026-11-01&amp;to=2026-11-30" data-quick-pick="this-month"' in html
    assert 'href="?from=2026-10-01&amp;to=2026-10-31" data-quick-pick="last-month"' in html
    assert 'href="?from=2026-10-17&amp;to=2026-11-15" data-quick-pick="last-30-days"' in html


def test_an_empty_period_shows_zeros_and_says_so(admin_client, admin_user, workspace, today):
    AIRequestFactory(workspace=workspace, user=admin_user, at=at(2026, 11, 3))

    response = admin_client.get(PAGE + "?from=2026-10-01&to=2026-10-31")

    html = response.content.decode()
    assert response.status_code == 200
    assert number(html, "data-total-requests") == 0
    assert number(html, "data-total-credits") == 0
    assert "No AI requests in this period." in html
    assert 'data-byok-cost-usd="0"' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01&to=2026-11-30", "'from' is not a date: write it as YYYY-MM-DD"),
        ("from=2026-11-01&to=yesterday", "'to' is not a date: write it as YYYY-MM-DD"),
        ("from=2026-11-30&to=2026-11-01", "The period starts after it ends"),
        ("from=2026-11-01", "Give both 'from' and 'to'"),
        ("from=2024-01-01&to=2026-01-01", "A period is at most 366 days long"),
    ],
)
def test_a_bad_period_is_a_clear_400_not_a_500(admin_client, workspace, query, message):
    response = admin_client.get(f"{PAGE}?{query}")

    html = unescape(response.content.decode())
    assert response.status_code == 400
    assert message in html
    assert "data-period-error" in html
    assert 'data-section="totals"' not in html
    assert "yesterday" not in html  # the bad value is not echoed back


# --- breakdowns -------------------------------------------------------------------------------


@pytest.fixture
def mixed_usage(workspace, admin_user, member_user):
    """November usage of two people, two models and both sources."""
    AIRequestFactory(
        workspace=workspace,
        user=admin_user,
        model="claude-haiku-4-5",
        credits_charged=30,
        at=at(2026, 11, 2, 9),
    )
    AIRequestFactory(
        workspace=workspace,
        user=member_user,
        model="claude-sonnet-5",
        credits_charged=100,
        at=at(2026, 11, 2, 10),
    )
    AIRequestFactory(
        workspace=workspace,
        user=member_user,
        model="claude-sonnet-5",
        credits_charged=200,
        at=at(2026, 11, 5, 10),
    )
    AIRequestFactory(
        workspace=workspace,
        user=member_user,
        model="claude-sonnet-5",
        credential_source="byok",
        at=at(2026, 11, 5, 11),
    )
    AIRequestFactory(
        workspace=workspace,
        user=member_user,
        model="claude-sonnet-5",
        outcome="provider_error",
        input_tokens=0,
        output_tokens=0,
        at=at(2026, 11, 6),
    )


def _row(html: str, attribute: str, value: str) -> str:
    match = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', html, re.S)
    assert match, f"no row {attribute}={value}"
    return match.group(1)


def test_admin_sees_breakdowns_by_model_member_and_day(admin_client, mixed_usage, today):
    html = admin_client.get(PAGE).content.decode()

    assert number(html, "data-total-requests") == 5
    assert number(html, "data-total-credits") == 330
    assert number(html, "data-total-tokens") == 4 * 150
    sonnet = _row(html, "data-model", "claude-sonnet-5")
    assert 'data-requests="4"' in sonnet and "(1 / 3)" in sonnet and 'data-credits="300"' in sonnet
    haiku = _row(html, "data-model", "claude-haiku-4-5")
    assert 'data-requests="1"' in haiku and 'data-credits="30"' in haiku
    member = _row(html, "data-member", "member@example.com")
    assert 'data-requests="4"' in member and 'data-credits="300"' in member
    admin = _row(html, "data-member", "admin@example.com")
    assert 'data-requests="1"' in admin and 'data-credits="30"' in admin
    day_2 = _row(html, "data-day", "2026-11-02")
    assert re.findall(r"<td[^>]*>([\d,]+)</td>", day_2) == ["0", "2", "0", "300", "130"]
    day_5 = _row(html, "data-day", "2026-11-05")
    assert re.findall(r"<td[^>]*>([\d,]+)</td>", day_5) == ["1", "1", "150", "150", "200"]


def test_a_member_sees_only_their_own_usage_and_no_ledger(
    member_client, mixed_usage, today, funded
):
    html = member_client.get(PAGE).content.decode()

    assert number(html, "data-total-requests") == 4
    assert number(html, "data-total-credits") == 300
    assert 'data-model="claude-haiku-4-5"' not in html
    assert "admin@example.com" not in html
    assert 'data-section="ledger"' not in html
    assert html.count("data-ai-request=") == 4


def test_the_chart_data_matches_the_table(admin_client, mixed_usage, today):
    import json

    html = admin_client.get(PAGE).content.decode()

    raw = re.search(r'<script id="usage-chart-data" type="application/json">(.*?)</script>', html)
    chart = json.loads(raw.group(1))
    assert chart["labels"][0] == "2026-11-01" and len(chart["labels"]) == 30
    assert chart["requests"]["platform"][1] == 2 and chart["requests"]["byok"][4] == 1
    assert chart["credits"]["platform"][4] == 200
    assert sum(chart["tokens"]["byok"]) + sum(chart["tokens"]["platform"]) == 600


# --- the BYOK cost estimate -------------------------------------------------------------------


def test_byok_cost_estimate_against_a_hand_computed_example(
    admin_client, admin_user, workspace, today
):
    def byok(**kwargs):
        AIRequestFactory(
            workspace=workspace,
            user=admin_user,
            credential_source="byok",
            at=at(2026, 11, 10),
            **kwargs,
        )

    # Sonnet 5 at $3 / $15 per MTok, cache read $0.30, cache write $3.75:
    # 1M in $3 + 200k out $3 + 100k cache read $0.03 + 40k cache write $0.15 = $6.18
    byok(model="claude-sonnet-5", input_tokens=600_000, output_tokens=200_000)
    byok(
        model="claude-sonnet-5",
        input_tokens=400_000,
        output_tokens=0,
        cache_read_input_tokens=100_000,
        cache_creation_input_tokens=40_000,
    )
    # Haiku 5.5, short prompt: 50k in at $0.10 + 10k out at $0.50 = $0.005 + $0.005 = $0.01
    byok(model="claude-haiku-5-5", input_tokens=50_000, output_tokens=10_000)
    # Haiku 5.5, 150k-token prompt (> 100k): long rates for the whole request:
    # 150k in at $0.50 + 10k out at $2.50 = $0.075 + $0.025 = $0.10
    byok(model="claude-haiku-5-5", input_tokens=150_000, output_tokens=10_000)
    # Not in the estimate: credits usage, and a model without a list price.
    AIRequestFactory(
        workspace=workspace,
        user=admin_user,
        model="claude-sonnet-5",
        input_tokens=1_000_000,
        credits_charged=30_000,
        at=at(2026, 11, 10),
    )
    byok(model="claude-someday-9", input_tokens=1_000, output_tokens=1_000)

    html = admin_client.get(PAGE).content.decode()

    assert 'data-byok-cost-usd="6.29' in html  # 6.18 + 0.01 + 0.10
    assert "≈ US$6.29" in html
    assert "Estimated at the providers' list prices of 4 December 2026" in html
    assert "no list price known: claude-someday-9" in html
    assert 'data-usd="6.18' in _row(html, "data-model", "claude-sonnet-5")
    assert 'data-usd="0.11' in _row(html, "data-model", "claude-haiku-5-5")
    assert "no list price" in _row(html, "data-model", "claude-someday-9")


def test_cost_estimate_service_is_exact_to_the_fraction_of_a_cent():
    from ai_gateway.cost_estimate import TokenCounts, cost_estimate, format_usd

    estimate = cost_estimate(counts=[TokenCounts("claude-haiku-5-5", False, 1_000, 100, 0, 0)])
    # 1k in at $0.10/MTok = $0.0001; 100 out at $0.50/MTok = $0.00005
    assert estimate.total_usd == Decimal("0.00015")
    assert format_usd(estimate.total_usd) == "US$0.0002"


# --- the ledger, one line per request ---------------------------------------------------------


def test_ledger_shows_one_line_per_request_and_the_lines_sum_to_the_balance(
    admin_client, member_client, workspace, admin_user, funded, standin, platform_key
):
    post(member_client, body())
    post(admin_client, body(model="claude-haiku-4-5"))
    standin.set_behavior(platform_key, "servererror")
    post(member_client, body())  # fails at the provider: the hold is released
    standin.set_behavior(platform_key, "ok")
    credits_adjust(workspace=workspace, amount=-500, reason="Correction: duplicate grant")
    settle = CreditEntry.objects.filter(workspace=workspace, kind=EntryKind.SETTLE).first()
    credits_refund(settlement=settle, amount=1, reason="Answer was cut off", actor=admin_user)
    credits_grant(workspace=workspace, amount=1_000, reason="Top-up for the launch")
    today = datetime.datetime.now(UTC).date().isoformat()

    html = admin_client.get(f"{PAGE}?from={today}&to={today}").content.decode()

    amounts = [
        int(a) for a in re.findall(r'<tr data-ledger-line="[a-z]+" data-amount="(-?\d+)"', html)
    ]
    assert len(amounts) == 3 + 4  # three requests; the first grant, adjustment, refund, top-up
    assert sum(amounts) == credits_balance(workspace=workspace)
    assert sum(amounts) == sum(
        CreditEntry.objects.filter(workspace=workspace).values_list("amount", flat=True)
    )
    assert html.count('data-ledger-line="charged"') == 2
    assert html.count('data-ledger-line="released"') == 1
    charged = [
        int(a) for a in re.findall(r'data-ledger-line="charged" data-amount="(-?\d+)"', html)
    ]
    assert sorted(-a for a in charged) == sorted(
        CreditEntry.objects.filter(workspace=workspace, kind=EntryKind.SETTLE).values_list(
            "charged", flat=True
        )
    )
    assert re.search(r'data-ledger-line="released" data-amount="0"', html)
    for reason in ("Correction: duplicate grant", "Answer was cut off", "Top-up for the launch"):
        assert reason in html
    # Hold and close are in the details, not lines of their own.
    assert html.count('<li data-entry-kind="hold">') == 3
    assert html.count('<li data-entry-kind="settle">') == 2
    assert html.count('<li data-entry-kind="release">') == 1
    assert "Usage (settled hold)" not in re.sub(r"<details>.*?</details>", "", html, flags=re.S)


def test_ledger_lines_paginate_within_the_period(admin_client, workspace, today):
    for n in range(30):
        credits_grant(workspace=workspace, amount=n + 1, reason=f"grant {n}")
    period = "from=" + datetime.datetime.now(UTC).date().isoformat()
    period += "&to=" + datetime.datetime.now(UTC).date().isoformat()

    first = admin_client.get(f"{PAGE}?{period}").content.decode()
    second = admin_client.get(f"{PAGE}?{period}&page=2").content.decode()

    assert first.count('data-ledger-line="grant"') == 25
    assert second.count('data-ledger-line="grant"') == 5
    assert "Page 2 of 2" in second
    assert f'href="?{period.replace("&", "&amp;")}&amp;page=2"' in first
    outside = admin_client.get(f"{PAGE}?from=2020-01-01&to=2020-01-31").content.decode()
    assert "No ledger entries in this period." in outside


# --- the number of queries --------------------------------------------------------------------


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PAGE).status_code == 200
    return len(queries)


def test_the_page_runs_a_fixed_number_of_queries_whatever_the_rows(
    admin_client, workspace, admin_user, today, django_assert_max_num_queries
):
    AIRequestFactory(workspace=workspace, user=admin_user, at=at(2026, 11, 2))
    credits_grant(workspace=workspace, amount=10, reason="first")
    few = _queries(admin_client)

    for n in range(60):
        user = UserFactory()
        MembershipFactory(workspace=workspace, user=user)
        AIRequestFactory(
            workspace=workspace,
            user=user,
            model=f"claude-model-{n % 7}",
            credential_source="byok" if n % 2 else "platform",
            at=at(2026, 11, 1 + n % 28),
        )
        credits_grant(workspace=workspace, amount=n + 1, reason=f"grant {n}")

    with django_assert_max_num_queries(few):
        admin_client.get(PAGE)
    assert few <= 14, few

    # With the closed days summed (decision 079) the page reads those and the requests of
    # the days after: a few more queries, still none per row.
    ai_usage_days_build(through=datetime.date(2026, 11, 14), today=today)
    with django_assert_max_num_queries(few + 2):
        html = admin_client.get(PAGE).content.decode()
    assert number(html, "data-total-requests") == 61


def test_a_refused_period_keeps_the_dates_asked_for(admin_client, workspace):
    html = admin_client.get(PAGE + "?from=2026-11-30&to=2026-11-01").content.decode()
    assert 'name="from" value="2026-11-30"' in html
    assert 'name="to" value="2026-11-01"' in html
    html = admin_client.get(PAGE + "?from=2026-11-30&to=soon").content.decode()
    assert 'name="from" value="2026-11-30"' in html and 'name="to" value=""' in html


def test_an_empty_period_has_no_chart_but_says_why(admin_client, workspace):
    html = admin_client.get(PAGE + "?from=2026-10-01&to=2026-10-31").content.decode()
    assert "data-chart-empty" in html and 'id="usage-chart"' not in html


def test_the_page_writes_dates_and_times_one_way(admin_client, admin_user, workspace, today):
    AIRequestFactory(workspace=workspace, user=admin_user, at=at(2026, 11, 3, 14, 5))
    html = admin_client.get(PAGE + "?from=2026-11-01&to=2026-11-30").content.decode()
    assert "3 Nov 2026, 14:05 UTC" in html  # the request, as on every other page
    assert "2026-11-03 14:05" not in html
    assert re.search(r'data-day="2026-11-03"><th[^>]*>3 Nov 2026<', html)


# --- one word per meaning ----------------------------------------------------------------------


def test_the_page_names_the_two_sources_as_the_chart_and_answers_do(
    admin_client, workspace, admin_user, today
):
    for source in ("byok", "platform"):
        AIRequestFactory(
            workspace=workspace, user=admin_user, credential_source=source, at=at(2026, 11, 14)
        )

    html = admin_client.get(PAGE).content.decode()
    text = unescape(re.sub(r"<[^>]+>", " ", html))

    assert "BYOK" not in text  # one pair of words: "Workspace key" and "AI credits"
    assert "Credits requests" not in text
    assert "Workspace key" in text and "AI credits" in text
    # The CSV keeps the API's codes; the page says which word each stands for.
    assert "byok for Workspace key and platform for AI credits" in " ".join(text.split())
