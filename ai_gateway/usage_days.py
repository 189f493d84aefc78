"""Closed UTC days of AI requests, summed once into ``AIUsageDay`` for the usage page.

A request row is written once, when the request ends, with ``created_at`` = that moment, so
a UTC day is complete soon after its midnight; the build runs for days before today only
and can be re-run for any day (it replaces that day's rows). See docs/decisions/079.
"""

from __future__ import annotations

import datetime
import logging

from django.db import transaction
from django.db.models import Count, Q, Sum

from .models import AIRequest, AIUsageDay, AIUsageDaysBuilt, Outcome
from .usage_selectors import long_context_condition

logger = logging.getLogger(__name__)

_TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


def _day_rows(day: datetime.date) -> list[AIUsageDay]:
    start = datetime.datetime.combine(day, datetime.time.min, tzinfo=datetime.UTC)
    long_context = long_context_condition()
    long_sums = {}
    if long_context is not None:
        long_sums = {
            f"long_{column}": Sum(column, filter=long_context) for column in _TOKEN_COLUMNS
        }
    grouped = (
        AIRequest.objects.filter(
            created_at__gte=start, created_at__lt=start + datetime.timedelta(days=1)
        )
        .order_by()
        .values("workspace_id", "user_id", "model", "credential_source")
        .annotate(
            n=Count("id"),
            ok=Count("id", filter=Q(outcome=Outcome.OK)),
            credits=Sum("credits_charged"),
            **{f"sum_{column}": Sum(column) for column in _TOKEN_COLUMNS},
            **long_sums,
        )
    )
    return [
        AIUsageDay(
            workspace_id=row["workspace_id"],
            day=day,
            user_id=row["user_id"],
            model=row["model"],
            credential_source=row["credential_source"],
            requests=row["n"],
            succeeded=row["ok"],
            credits_charged=row["credits"],
            **{column: row[f"sum_{column}"] for column in _TOKEN_COLUMNS},
            **{f"long_{column}": row.get(f"long_{column}") or 0 for column in _TOKEN_COLUMNS},
        )
        for row in grouped
    ]


def ai_usage_days_build(*, through: datetime.date, today: datetime.date) -> int:
    """Sum every day after the last one built, up to ``through`` (before ``today``), into
    ``AIUsageDay``; return the number of days built. Safe to run twice or concurrently."""
    if through >= today:
        raise ValueError("Only closed days can be built: 'through' must be before today.")
    built = 0
    while True:
        with transaction.atomic():
            # One builder at a time: the marker row is the lock (created on the first run).
            marker = AIUsageDaysBuilt.objects.select_for_update().filter(pk=1).first()
            if marker is None:
                first = (
                    AIRequest.objects.order_by("created_at")
                    .values_list("created_at", flat=True)
                    .first()
                )
                first_day = first.astimezone(datetime.UTC).date() if first else through
                marker, _ = AIUsageDaysBuilt.objects.get_or_create(
                    pk=1, defaults={"through": first_day - datetime.timedelta(days=1)}
                )
                marker = AIUsageDaysBuilt.objects.select_for_update().get(pk=1)
            day = marker.through + datetime.timedelta(days=1)
            if day > through:
                break
            AIUsageDay.objects.filter(day=day).delete()
            AIUsageDay.objects.bulk_create(_day_rows(day), batch_size=2000)
            marker.through = day
            marker.save(update_fields=["through", "built_at"])
        built += 1
    if built:
        logger.info("AI usage days built through %s (%d days).", through.isoformat(), built)
    return built
