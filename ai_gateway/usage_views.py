"""The usage page and its CSV export (§14)."""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from credits.ledger_lines import credit_ledger_line_entries, credit_ledger_lines
from credits.selectors import credits_balance
from llm_keys.access import get_member_context
from llm_keys.selectors import credentials_next_by_provider

from .cost_estimate import format_usd
from .models import CredentialSource
from .periods import Period, PeriodError, period_from_query, period_quick_picks, today_utc
from .usage_selectors import (
    EXPORT_COLUMNS,
    ai_requests_for_export,
    ai_requests_page_rows,
    usage_summary,
)

LEDGER_PAGE_SIZE = 25
REQUESTS_PAGE_SIZE = 50
CSV_ROWS_PER_WRITE = 500
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection"); user-controlled text cells get a leading apostrophe so it stays text. Every
# cell is quoted too, and since a spreadsheet in another locale may still split a cell on
# ";", a tab or "|", a formula character after any separator gets its apostrophe as well.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
FORMULA_AFTER_SEPARATOR = re.compile(r"([,;\t|\r\n]\s*)(?=[=+\-@])")


@login_required
@require_GET
def ai_usage(request: HttpRequest, slug: str) -> HttpResponse:
    member = get_member_context(request, slug)
    workspace = member.workspace
    is_admin = member.membership.is_admin
    only_user = None if is_admin else request.user
    today = today_utc()
    context: dict[str, Any] = {
        **member.as_context(),
        "own_only": only_user is not None,
        "quick_picks": period_quick_picks(today=today),
    }
    try:
        period = period_from_query(request.GET, today=today)
    except PeriodError as error:
        context["period_error"] = str(error)
        # The fields keep what was asked for, so it can be corrected (dates only: nothing
        # else typed into the query string is echoed).
        context["typed"] = {
            name: _iso_date_or_blank(request.GET.get(name)) for name in ("from", "to")
        }
        return render(request, "ai_gateway/usage.html", context, status=400)

    summary = usage_summary(workspace=workspace, period=period, user=only_user)
    requests_page = Paginator(
        ai_requests_page_rows(workspace=workspace, period=period, user=only_user),
        REQUESTS_PAGE_SIZE,
    ).get_page(request.GET.get("requests_page"))
    ledger_page = ledger_lines = None
    if is_admin:
        ledger_page = Paginator(
            credit_ledger_line_entries(workspace=workspace, start=period.start, end=period.end),
            LEDGER_PAGE_SIZE,
        ).get_page(request.GET.get("page"))
        ledger_lines = credit_ledger_lines(list(ledger_page.object_list))
    context.update(
        period=period,
        summary=summary,
        chart=_chart_data(summary.days),
        byok_cost_usd=format_usd(summary.byok_cost.total_usd),
        model_rows=[
            (m, format_usd(m.estimated_usd) if m.estimated_usd is not None else None)
            for m in summary.by_model
        ],
        balance=credits_balance(workspace=workspace),
        next_credentials_by_provider=credentials_next_by_provider(workspace=workspace),
        requests_page=requests_page,
        ledger_page=ledger_page,
        ledger_lines=ledger_lines,
    )
    return render(request, "ai_gateway/usage.html", context)


def _iso_date_or_blank(raw: str | None) -> str:
    try:
        return datetime.date.fromisoformat((raw or "").strip()).isoformat()
    except ValueError:
        return ""


def _chart_data(days) -> dict[str, Any]:
    return {
        "labels": [day.day.isoformat() for day in days],
        "requests": {
            "byok": [day.byok.requests for day in days],
            "platform": [day.platform.requests for day in days],
        },
        "tokens": {
            "byok": [day.byok.tokens for day in days],
            "platform": [day.platform.tokens for day in days],
        },
        "credits": {"platform": [day.platform.credits for day in days]},
        "source_labels": {
            "byok": CredentialSource.BYOK.label,
            "platform": CredentialSource.PLATFORM.label,
        },
    }


def csv_safe(value: Any) -> Any:
    """Return a cell a spreadsheet will show as text, never run as a formula."""
    if not isinstance(value, str):
        return value
    value = FORMULA_AFTER_SEPARATOR.sub(r"\1'", value)
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _csv_chunks(header: Iterable[str], rows: Iterable[list[Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(header)
    # Text quoted, figures bare: a quoted cell keeps its separators inside it.
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)
    pending = 0
    for row in rows:
        writer.writerow([csv_safe(cell) for cell in row])
        pending += 1
        if pending == CSV_ROWS_PER_WRITE:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode()


def _export_filename(slug: str, period: Period) -> str:
    return f"ai-usage-{slug}-{period.first.isoformat()}-to-{period.last.isoformat()}.csv"


@login_required
@require_GET
def ai_usage_export(request: HttpRequest, slug: str) -> HttpResponse:
    member = get_member_context(request, slug)
    workspace = member.workspace
    only_user = None if member.membership.is_admin else request.user
    try:
        period = period_from_query(request.GET, today=today_utc())
    except PeriodError as error:
        return HttpResponse(f"{error}\n", status=400, content_type="text/plain; charset=utf-8")
    rows = ai_requests_for_export(workspace=workspace, period=period, user=only_user)
    response = StreamingHttpResponse(
        _csv_chunks(EXPORT_COLUMNS, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{_export_filename(workspace.slug, period)}"'
    )
    return response
