"""The ledger as people read it: one line per AI request, grant, adjustment or refund.

An AI request on credits writes two entries, a hold and the settle or release that closes
it. Shown apart they read as a debit and then an income; folded, the line's amount is the
request's net charge (hold + close) and the two entries become its details. Every entry
belongs to exactly one line, so over all time the lines add up to the balance.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from workspaces.models import Workspace

from .models import CreditEntry, EntryKind

FOLDED_KINDS = (EntryKind.EXTEND, EntryKind.SETTLE, EntryKind.RELEASE)


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One line of the ledger view; ``entries`` are the entries folded into it, oldest first."""

    entry: CreditEntry
    close: CreditEntry | None
    amount: int
    label: str
    detail: str
    folded: tuple[CreditEntry, ...] = ()

    @property
    def entries(self) -> list[CreditEntry]:
        return [self.entry, *self.folded]

    @property
    def is_request(self) -> bool:
        return self.entry.kind == EntryKind.HOLD

    @property
    def state(self) -> str:
        if not self.is_request:
            return self.entry.kind
        if self.close is None:
            return "pending"
        return "charged" if self.close.kind == EntryKind.SETTLE else "released"


def credit_ledger_line_entries(
    *, workspace: Workspace, start: datetime.datetime, end: datetime.datetime
) -> QuerySet[CreditEntry]:
    """Return the entries that open a ledger line in ``[start, end)``, newest first, with the
    entry that closes each hold (ready to paginate: the prefetch is one query per page)."""
    return (
        CreditEntry.objects.filter(
            workspace_id=workspace.pk, created_at__gte=start, created_at__lt=end
        )
        .exclude(kind__in=FOLDED_KINDS)
        .select_related("actor")
        .prefetch_related(
            Prefetch("closes", queryset=CreditEntry.objects.order_by("id"), to_attr="closed_by")
        )
        .order_by("-created_at", "-id")
    )


def _describe_request(
    hold: CreditEntry, close: CreditEntry | None, extended: int = 0
) -> tuple[str, str]:
    held = -hold.amount + extended
    if close is None:
        return "AI request (in progress)", f"{held:,} credits held until the request ends."
    if close.kind == EntryKind.RELEASE:
        return (
            "AI request (not charged)",
            f"{held:,} credits held, all {close.amount:,} released: the request did not complete.",
        )
    detail = f"{held:,} credits held; charged {close.charged:,}"
    if close.amount > 0:
        detail += f", {close.amount:,} returned"
    elif close.amount < 0:
        detail += f", {-close.amount:,} more taken (usage above the hold)"
    if close.written_off:
        detail += f", {close.written_off:,} written off (the balance could not cover them)"
    return "AI request", detail + "."


def credit_ledger_lines(entries: list[CreditEntry]) -> list[LedgerLine]:
    """Fold each hold of ``entries`` (from ``credit_ledger_line_entries``) with its close."""
    lines = []
    for entry in entries:
        closes = getattr(entry, "closed_by", None)
        if closes is None:
            closes = list(entry.closes.order_by("id"))
        # A settle wins over a release: after one, it is the request's late charge.
        close = next((c for c in closes if c.kind == EntryKind.SETTLE), None) or next(
            (c for c in closes if c.kind == EntryKind.RELEASE), None
        )
        if entry.kind == EntryKind.HOLD:
            extended = -sum(c.amount for c in closes if c.kind == EntryKind.EXTEND)
            label, detail = _describe_request(entry, close, extended)
            amount = entry.amount + sum(c.amount for c in closes)
        else:
            label, detail = entry.get_kind_display(), entry.reason
            amount = entry.amount
        lines.append(
            LedgerLine(
                entry=entry,
                close=close,
                amount=amount,
                label=label,
                detail=detail,
                folded=tuple(closes),
            )
        )
    return lines
