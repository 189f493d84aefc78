"""Reads for the usage page and the CSV export: AI requests of one workspace over a period.

Every figure comes from a fixed number of grouped queries, whatever the number of requests
(the page runs two scans of the period and one read of the members' e-mails; the export
streams one query). They read the composite index on
``(workspace, created_at)``, or ``(workspace, user, created_at)`` for a member's own usage.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.db.models.lookups import GreaterThan

from credits.pricing import get_price
from workspaces.models import Workspace

from .cost_estimate import CostEstimate, TokenCounts, cost_estimate, long_context_thresholds
from .models import AIRequest, AIUsageDay, AIUsageDaysBuilt, CredentialSource, Outcome
from .periods import Period

SOURCES = (CredentialSource.BYOK, CredentialSource.PLATFORM)
EXPORT_CHUNK_ROWS = 2_000

# Who made a request, as the export and the by-member breakdown name them. Issue 11 adds
# token requests: add "api_token__name" here and read it in ``requester_label``.
REQUESTER_FIELDS = ("user_id", "user__email", "api_token__name")


def requester_label(row: Mapping[str, Any]) -> str:
    """Return who made a request: the member's e-mail, or the name of the workspace API token
    a program used (or a note when the user or token is gone)."""
    if row.get("user__email"):
        return row["user__email"]
    if row.get("api_token__name"):
        return row["api_token__name"]
    return "(deleted user)"


def ai_requests_in_period(
    *, workspace: Workspace, period: Period, user=None
) -> QuerySet[AIRequest]:
    """Return the workspace's AI requests created in the period; only one user's when given."""
    requests = AIRequest.objects.filter(
        workspace_id=workspace.pk, created_at__gte=period.start, created_at__lt=period.end
    )
    if user is not None:
        requests = requests.filter(user_id=user.pk)
    return requests


@dataclass(slots=True)
class SourceFigures:
    requests: int = 0
    succeeded: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tokens: int = 0
    credits: int = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self.requests += row["requests"]
        self.succeeded += row["succeeded"]
        self.input_tokens += row["sum_input"]
        self.output_tokens += row["sum_output"]
        self.tokens += _tokens_of(row)
        self.credits += row["credits"]


def _tokens_of(row: Mapping[str, Any]) -> int:
    return row["sum_input"] + row["sum_output"] + row["sum_cache_read"] + row["sum_cache_write"]


@dataclass(slots=True)
class DayFigures:
    day: datetime.date
    byok: SourceFigures = field(default_factory=SourceFigures)
    platform: SourceFigures = field(default_factory=SourceFigures)

    @property
    def requests(self) -> int:
        return self.byok.requests + self.platform.requests

    @property
    def tokens(self) -> int:
        return self.byok.tokens + self.platform.tokens


@dataclass(slots=True)
class ModelFigures:
    model: str
    byok: SourceFigures = field(default_factory=SourceFigures)
    platform: SourceFigures = field(default_factory=SourceFigures)
    estimated_usd: Any = None  # Decimal, or None without a list price or BYOK usage

    @property
    def requests(self) -> int:
        return self.byok.requests + self.platform.requests

    @property
    def tokens(self) -> int:
        return self.byok.tokens + self.platform.tokens


@dataclass(frozen=True, slots=True)
class MemberFigures:
    user_id: int | None
    label: str
    requests: int
    byok_requests: int
    platform_requests: int
    tokens: int
    credits: int


@dataclass(slots=True)
class UsageSummary:
    """Everything the usage page shows about AI requests in one period."""

    period: Period
    total: SourceFigures
    by_source: dict[str, SourceFigures]
    days: list[DayFigures]
    by_model: list[ModelFigures]
    by_member: list[MemberFigures]
    byok_cost: CostEstimate


def _token_sums() -> dict[str, Any]:
    # No COALESCE: a group has at least one row and the columns are NOT NULL.
    return {
        "sum_input": Sum("input_tokens"),
        "sum_output": Sum("output_tokens"),
        "sum_cache_read": Sum("cache_read_input_tokens"),
        "sum_cache_write": Sum("cache_creation_input_tokens"),
        "credits": Sum("credits_charged"),
    }


_TOKEN_COLUMNS = {
    "sum_input": "input_tokens",
    "sum_output": "output_tokens",
    "sum_cache_read": "cache_read_input_tokens",
    "sum_cache_write": "cache_creation_input_tokens",
}


def long_context_condition() -> Q | None:
    # A model with long-context pricing bills the whole request at its long rates once the
    # prompt passes the threshold (decision 010), so those requests' tokens are summed apart.
    prompt = F("input_tokens") + F("cache_read_input_tokens") + F("cache_creation_input_tokens")
    condition = None
    for threshold, models in sorted(long_context_thresholds().items()):
        part = Q(GreaterThan(prompt, threshold), model__in=models)
        condition = part if condition is None else condition | part
    return condition


def figures_by_day_source_and_model(requests: QuerySet[AIRequest]) -> QuerySet:
    """One scan for the days, the sources, the models and the cost estimate: at most days x
    sources x models rows, whatever the number of requests."""
    long_context = long_context_condition()
    long_sums = {}
    if long_context is not None:
        long_sums = {
            f"long_{name}": Sum(column, filter=long_context)
            for name, column in _TOKEN_COLUMNS.items()
        }
    # Grouped on plain columns and one expression (the UTC day): more expressions in the key
    # make PostgreSQL guess one group per row and sort instead of hashing.
    return (
        requests.annotate(day=TruncDate("created_at", tzinfo=datetime.UTC))
        .order_by()
        .values("day", "credential_source", "model")
        .annotate(
            requests=Count("id"),
            succeeded=Count("id", filter=Q(outcome=Outcome.OK)),
            **_token_sums(),
            **long_sums,
        )
    )


def _figures_by_user(requests: QuerySet[AIRequest]) -> list[dict[str, Any]]:
    # Grouped on the request table alone; the few e-mails are read afterwards, so the
    # aggregate does not join every request to its user.
    return list(
        requests.order_by()
        .values("user_id")
        .annotate(
            requests=Count("id"),
            byok_requests=Count("id", filter=Q(credential_source=CredentialSource.BYOK)),
            platform_requests=Count("id", filter=Q(credential_source=CredentialSource.PLATFORM)),
            **_token_sums(),
        )
    )


def _summed_days(
    *, workspace: Workspace, first: datetime.date, last: datetime.date, user=None
) -> QuerySet[AIUsageDay]:
    days = AIUsageDay.objects.filter(workspace_id=workspace.pk, day__gte=first, day__lte=last)
    if user is not None:
        days = days.filter(user_id=user.pk)
    return days


def _summed_token_sums() -> dict[str, Any]:
    return {
        "sum_input": Sum("input_tokens"),
        "sum_output": Sum("output_tokens"),
        "sum_cache_read": Sum("cache_read_input_tokens"),
        "sum_cache_write": Sum("cache_creation_input_tokens"),
        "credits": Sum("credits_charged"),
    }


def _summed_by_day_source_and_model(days: QuerySet[AIUsageDay]) -> QuerySet:
    return (
        days.order_by()
        .values("day", "credential_source", "model")
        .annotate(
            requests=Sum("requests"),
            succeeded=Sum("succeeded"),
            **_summed_token_sums(),
            long_sum_input=Sum("long_input_tokens"),
            long_sum_output=Sum("long_output_tokens"),
            long_sum_cache_read=Sum("long_cache_read_input_tokens"),
            long_sum_cache_write=Sum("long_cache_creation_input_tokens"),
        )
    )


def _summed_by_user(days: QuerySet[AIUsageDay]) -> QuerySet:
    # The split sums come first: an annotation named like a column ("requests") would
    # otherwise be what a later Sum("requests") reads.
    return (
        days.order_by()
        .values("user_id")
        .annotate(
            byok_requests=Coalesce(
                Sum("requests", filter=Q(credential_source=CredentialSource.BYOK)), 0
            ),
            platform_requests=Coalesce(
                Sum("requests", filter=Q(credential_source=CredentialSource.PLATFORM)), 0
            ),
            requests=Sum("requests"),
            **_summed_token_sums(),
        )
    )


_USER_NUMBERS = ("requests", "byok_requests", "platform_requests", *_TOKEN_COLUMNS, "credits")


def _merged_by_user(*row_lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[int | None, dict[str, Any]] = {}
    for rows in row_lists:
        for row in rows:
            into = merged.get(row["user_id"])
            if into is None:
                merged[row["user_id"]] = dict(row)
            else:
                for name in _USER_NUMBERS:
                    into[name] += row[name]
    return list(merged.values())


def _period_rows(
    *, workspace: Workspace, period: Period, user=None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the period's (day x source x model) rows and (user) rows: summed days where
    they are built (AIUsageDay), the requests themselves for the days after."""
    day_rows: list[dict[str, Any]] = []
    user_lists: list[list[dict[str, Any]]] = []
    live_from = period.start
    through = AIUsageDaysBuilt.objects.values_list("through", flat=True).first()
    if through is not None and through >= period.first:
        last = min(through, period.last)
        summed = _summed_days(workspace=workspace, first=period.first, last=last, user=user)
        day_rows.extend(_summed_by_day_source_and_model(summed))
        user_lists.append(list(_summed_by_user(summed)))
        live_from = datetime.datetime.combine(
            last + datetime.timedelta(days=1), datetime.time.min, tzinfo=datetime.UTC
        )
    if live_from < period.end:
        requests = ai_requests_in_period(workspace=workspace, period=period, user=user).filter(
            created_at__gte=live_from
        )
        day_rows.extend(figures_by_day_source_and_model(requests))
        user_lists.append(_figures_by_user(requests))
    return day_rows, _merged_by_user(*user_lists)


def _emails(user_ids: list[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "email"))


def _source_bucket(holder: Any, source: str) -> SourceFigures | None:
    if source == CredentialSource.BYOK:
        return holder.byok
    if source == CredentialSource.PLATFORM:
        return holder.platform
    return None  # refused before any credentials were chosen: counted in totals only


def usage_summary(*, workspace: Workspace, period: Period, user=None) -> UsageSummary:
    """Return totals, days, models, members and the BYOK cost estimate for the period."""
    day_rows, user_rows = _period_rows(workspace=workspace, period=period, user=user)

    total = SourceFigures()
    by_source = {source: SourceFigures() for source in CredentialSource.values}
    days = {day: DayFigures(day) for day in period.each_day()}
    models: dict[str, ModelFigures] = {}
    byok_tokens: dict[tuple[str, bool], list[int]] = {}
    for row in day_rows:
        source = row["credential_source"]
        total.add(row)
        by_source[source].add(row)
        for holder in (
            days[row["day"]],
            models.setdefault(row["model"], ModelFigures(row["model"])),
        ):
            bucket = _source_bucket(holder, source)
            if bucket is not None:
                bucket.add(row)
        if source == CredentialSource.BYOK:
            for long_context in (False, True):
                sums = byok_tokens.setdefault((row["model"], long_context), [0, 0, 0, 0])
                for n, name in enumerate(_TOKEN_COLUMNS):
                    long_part = row.get(f"long_{name}") or 0
                    sums[n] += long_part if long_context else row[name] - long_part
    byok_cost = cost_estimate(
        counts=[
            TokenCounts(model, long_context, *sums)
            for (model, long_context), sums in byok_tokens.items()
        ]
    )
    for model, model_cost in byok_cost.by_model.items():
        models[model].estimated_usd = model_cost.usd

    emails = _emails([row["user_id"] for row in user_rows if row["user_id"] is not None])
    members = [
        MemberFigures(
            user_id=row["user_id"],
            label=requester_label({"user__email": emails.get(row["user_id"])}),
            requests=row["requests"],
            byok_requests=row["byok_requests"],
            platform_requests=row["platform_requests"],
            tokens=_tokens_of(row),
            credits=row["credits"],
        )
        for row in user_rows
    ]
    return UsageSummary(
        period=period,
        total=total,
        by_source=by_source,
        days=list(days.values()),
        by_model=sorted(models.values(), key=lambda m: (-m.requests, m.model)),
        by_member=sorted(members, key=lambda m: (-m.requests, m.label)),
        byok_cost=byok_cost,
    )


def ai_requests_page_rows(
    *, workspace: Workspace, period: Period, user=None
) -> QuerySet[AIRequest]:
    """Return the period's requests newest first, with their user or token, ready to paginate."""
    return (
        ai_requests_in_period(workspace=workspace, period=period, user=user)
        .select_related("user", "api_token")
        .order_by("-created_at", "-id")
    )


# The contract's columns first, in its order (§14); the rest help reconcile with invoices.
EXPORT_COLUMNS = (
    "created_at",
    "user",
    "model",
    "credential_source",
    "outcome",
    "input_tokens",
    "output_tokens",
    "credits_charged",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "error_type",
    "latency_ms",
    "stream",
    "request_id",
    "estimated_usd",
    # Which provider served the request (SPEC §18, contract); last, so that the columns
    # before it keep their places.
    "provider",
)

_EXPORT_VALUES = (
    "created_at",
    *REQUESTER_FIELDS,
    "model",
    "credential_source",
    "outcome",
    "input_tokens",
    "output_tokens",
    "credits_charged",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "error_type",
    "latency_ms",
    "stream",
    "provider_request_id",
    "provider",
)


def ai_requests_for_export(
    *, workspace: Workspace, period: Period, user=None
) -> Iterator[list[Any]]:
    """Yield the period's requests oldest first as export rows (``EXPORT_COLUMNS``), streamed
    from the database in chunks so no more than one chunk is ever in memory."""
    rows = (
        ai_requests_in_period(workspace=workspace, period=period, user=user)
        .order_by("created_at", "id")
        .values(*_EXPORT_VALUES)
        .iterator(chunk_size=EXPORT_CHUNK_ROWS)
    )
    for row in rows:
        yield [
            row["created_at"].astimezone(datetime.UTC).isoformat().replace("+00:00", "Z"),
            requester_label(row),
            row["model"],
            row["credential_source"],
            row["outcome"],
            row["input_tokens"],
            row["output_tokens"],
            row["credits_charged"],
            row["cache_read_input_tokens"],
            row["cache_creation_input_tokens"],
            row["error_type"],
            row["latency_ms"],
            "true" if row["stream"] else "false",
            row["provider_request_id"],
            _estimated_usd(row),
            row["provider"],
        ]


def _estimated_usd(row: dict[str, Any]) -> str:
    """A BYOK request's list-price cost in US$ (empty on credits, or without a list price)."""
    if row["credential_source"] != CredentialSource.BYOK:
        return ""
    price = get_price(row["model"])
    if price is None:
        return ""
    prompt = (
        row["input_tokens"] + row["cache_read_input_tokens"] + row["cache_creation_input_tokens"]
    )
    threshold = price.long_context_above_input_tokens
    counts = TokenCounts(
        row["model"],
        threshold is not None and prompt > threshold,
        row["input_tokens"],
        row["output_tokens"],
        row["cache_read_input_tokens"],
        row["cache_creation_input_tokens"],
    )
    return f"{cost_estimate(counts=[counts]).total_usd:.6f}"
