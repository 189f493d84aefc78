"""The usage page's period queries on PostgreSQL: the indexes and statistics they rely on."""

import datetime
import json

import pytest
from django.db import connection

from ai_gateway.models import AIRequest
from ai_gateway.periods import Period
from ai_gateway.usage_selectors import ai_requests_in_period, figures_by_day_source_and_model
from credits.ledger_lines import credit_ledger_line_entries
from credits.services import credits_grant

pytestmark = pytest.mark.postgres

NOVEMBER = Period(datetime.date(2026, 11, 1), datetime.date(2026, 11, 30))


def _explain(sql: str, params) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def _walk(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _walk(child)


def test_grouping_by_utc_day_is_estimated_by_day_not_by_row(on_postgres, workspace):
    # 3,000 requests over 3 days: without the day statistics (ai_gateway 0003) PostgreSQL
    # would expect one group per request and sort instead of hashing.
    start = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
    rows = AIRequest.objects.bulk_create(
        AIRequest(
            workspace=workspace,
            provider="anthropic",
            model="claude-sonnet-5",
            credential_source="platform",
            outcome="ok",
        )
        for _ in range(3000)
    )
    for n, row in enumerate(rows):  # every request at its own second, 1,000 per day
        row.created_at = start + datetime.timedelta(days=n // 1000, seconds=n % 1000)
    AIRequest.objects.bulk_update(rows, ["created_at"], batch_size=500)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ai_gateway_airequest")
    queryset = ai_requests_in_period(workspace=workspace, period=NOVEMBER)

    sql, params = figures_by_day_source_and_model(queryset).query.sql_with_params()
    plan = _explain(sql, params)

    assert plan["Plan Rows"] < 100, plan["Plan Rows"]


def test_ledger_lines_read_their_partial_index(on_postgres, workspace):
    for n in range(50):
        credits_grant(workspace=workspace, amount=n + 1, reason=f"grant {n}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE credits_creditentry")
        cursor.execute("SET LOCAL enable_seqscan = off")
    lines = credit_ledger_line_entries(
        workspace=workspace,
        start=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        end=datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC),
    )
    sql, params = lines[:25].query.sql_with_params()

    indexes = {node.get("Index Name") for node in _walk(_explain(sql, params))}

    assert "credits_entry_ws_line_idx" in indexes
