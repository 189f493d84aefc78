"""Closed days summed into AIUsageDay: the page shows the same figures from them as from the
requests, and the build is idempotent."""

import datetime

import pytest

from ai_gateway.models import AIUsageDay, AIUsageDaysBuilt
from ai_gateway.periods import Period
from ai_gateway.tasks import ai_usage_days_build_yesterday
from ai_gateway.usage_days import ai_usage_days_build
from ai_gateway.usage_selectors import usage_summary
from tests.factories import AIRequestFactory

UTC = datetime.UTC
NOVEMBER = Period(datetime.date(2026, 11, 1), datetime.date(2026, 11, 30))


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


@pytest.fixture
def november(workspace, admin_user, member_user):
    def request(**kwargs):
        AIRequestFactory(workspace=workspace, **kwargs)

    request(user=admin_user, model="claude-haiku-4-5", credits_charged=30, at=at(2026, 10, 31, 23))
    request(user=admin_user, model="claude-haiku-4-5", credits_charged=30, at=at(2026, 11, 2, 9))
    request(user=member_user, credits_charged=100, at=at(2026, 11, 2, 23, 59, 59))
    request(
        user=member_user,
        credential_source="byok",
        model="claude-haiku-5-5",
        input_tokens=150_000,
        output_tokens=10_000,
        at=at(2026, 11, 3, 0, 0, 0),
    )
    request(
        user=member_user,
        credential_source="byok",
        model="claude-haiku-5-5",
        input_tokens=50_000,
        output_tokens=10_000,
        cache_read_input_tokens=7,
        at=at(2026, 11, 3, 8),
    )
    request(
        user=member_user,
        outcome="provider_error",
        input_tokens=0,
        output_tokens=0,
        at=at(2026, 11, 4, 12),
    )
    request(user=None, credits_charged=5, at=at(2026, 11, 4, 13))  # a deleted user's request
    request(user=member_user, credits_charged=70, at=at(2026, 11, 20, 10))


def _figures(summary):
    return (
        summary.total,
        summary.by_source,
        summary.days,
        summary.by_model,
        summary.by_member,
        summary.byok_cost.total_usd,
        summary.byok_cost.unpriced_models,
    )


@pytest.mark.parametrize(
    "through", [datetime.date(2026, 11, 2), datetime.date(2026, 11, 3), datetime.date(2026, 11, 30)]
)
def test_summed_days_give_the_same_figures_as_the_requests(
    workspace, member_user, november, through
):
    live = usage_summary(workspace=workspace, period=NOVEMBER)
    live_member = usage_summary(workspace=workspace, period=NOVEMBER, user=member_user)

    built = ai_usage_days_build(through=through, today=datetime.date(2026, 12, 2))

    assert built == (through - datetime.date(2026, 10, 31)).days + 1  # from the first request
    assert AIUsageDay.objects.exists()
    assert _figures(usage_summary(workspace=workspace, period=NOVEMBER)) == _figures(live)
    assert _figures(
        usage_summary(workspace=workspace, period=NOVEMBER, user=member_user)
    ) == _figures(live_member)
    assert live.byok_cost.total_usd > 0


def _rows():
    return sorted(
        AIUsageDay.objects.values_list("day", "user_id", "model", "requests"),
        key=lambda row: (row[0], row[1] or 0, row[2]),
    )


def test_building_again_changes_nothing_and_builds_no_day_twice(workspace, november):
    today = datetime.date(2026, 12, 2)
    assert ai_usage_days_build(through=datetime.date(2026, 11, 30), today=today) == 31
    rows = _rows()

    assert ai_usage_days_build(through=datetime.date(2026, 11, 30), today=today) == 0
    assert _rows() == rows
    assert AIUsageDaysBuilt.objects.get().through == datetime.date(2026, 11, 30)


def test_only_closed_days_are_built(workspace):
    with pytest.raises(ValueError, match="Only closed days"):
        ai_usage_days_build(through=datetime.date(2026, 12, 2), today=datetime.date(2026, 12, 2))


def test_the_daily_task_builds_through_yesterday(workspace, admin_user):
    yesterday = datetime.datetime.now(UTC).date() - datetime.timedelta(days=1)
    AIRequestFactory(
        workspace=workspace,
        user=admin_user,
        at=datetime.datetime.combine(yesterday, datetime.time(12), tzinfo=UTC),
    )

    ai_usage_days_build_yesterday.delay()

    assert AIUsageDaysBuilt.objects.get().through == yesterday
    assert AIUsageDay.objects.get().requests == 1


def test_the_page_reads_summed_days_and_todays_requests(admin_client, workspace, admin_user):
    today = datetime.datetime.now(UTC).date()
    yesterday = today - datetime.timedelta(days=1)
    for moment in (yesterday, today):
        AIRequestFactory(
            workspace=workspace,
            user=admin_user,
            credits_charged=10,
            at=datetime.datetime.combine(moment, datetime.time(0, 30), tzinfo=UTC),
        )
    ai_usage_days_build(through=yesterday, today=today)
    AIRequestFactory(  # a request of a built day cannot appear later; this one is today's
        workspace=workspace,
        user=admin_user,
        credits_charged=1,
        at=datetime.datetime.combine(today, datetime.time(0, 45), tzinfo=UTC),
    )

    html = admin_client.get(
        f"/w/acme/usage/?from={yesterday.isoformat()}&to={today.isoformat()}"
    ).content.decode()

    assert 'data-total-requests="3"' in html
    assert 'data-total-credits="21"' in html
