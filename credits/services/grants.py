"""Credits added or corrected by people and the allowance: grants, adjustments, refunds."""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from workspaces.models import Workspace

from ..exceptions import CreditsError, IdempotencyConflictError, InsufficientCreditsError
from ..models import CreditAccount, CreditEntry, EntryKind
from .ledger import (
    NotCovered,
    current_balance,
    ensure_account,
    existing_entry,
    key_or_new,
    ledger_post,
    replay,
    require_amount,
    require_reason,
)

logger = logging.getLogger("credits.services")


def _post(
    *,
    workspace: Workspace,
    kind: str,
    amount: int,
    key: str,
    reason: str = "",
    actor=None,
    settlement: CreditEntry | None = None,
) -> tuple[CreditEntry, bool]:
    """Write one entry that is not a request's; return it and whether it was written now."""
    ensure_account(workspace.pk)
    try:
        posted = ledger_post(
            workspace_id=workspace.pk,
            kind=kind,
            amount=amount,
            key=key,
            fields={"reason": reason, "actor": actor, "settlement": settlement},
        )
    except NotCovered:
        raise InsufficientCreditsError(
            balance=current_balance(workspace.pk), needed=-amount
        ) from None
    return posted.entry, posted.created


def credits_grant(
    *,
    workspace: Workspace,
    amount: int,
    reason: str,
    actor=None,
    idempotency_key: str | None = None,
) -> CreditEntry:
    """Add credits to a workspace's balance, saying why and who."""
    return _credits_by_hand(
        workspace=workspace,
        kind=EntryKind.GRANT,
        amount=amount,
        reason=reason,
        actor=actor,
        idempotency_key=idempotency_key,
    )


def credits_adjust(
    *,
    workspace: Workspace,
    amount: int,
    reason: str,
    actor=None,
    idempotency_key: str | None = None,
) -> CreditEntry:
    """Correct a balance by a signed amount; a debit never takes it below zero."""
    return _credits_by_hand(
        workspace=workspace,
        kind=EntryKind.ADJUSTMENT,
        amount=amount,
        reason=reason,
        actor=actor,
        idempotency_key=idempotency_key,
    )


# The entries people post by hand: the idempotency-key prefix and the log's verb of each.
_BY_HAND = {EntryKind.GRANT: ("grant", "granted"), EntryKind.ADJUSTMENT: ("adjust", "adjusted")}


def _credits_by_hand(
    *,
    workspace: Workspace,
    kind: str,
    amount: int,
    reason: str,
    actor,
    idempotency_key: str | None,
) -> CreditEntry:
    """Post a grant (positive) or an adjustment (signed), with its reason, once per key."""
    prefix, verb = _BY_HAND[kind]
    require_amount(amount, allow_negative=kind == EntryKind.ADJUSTMENT)
    entry, created = _post(
        workspace=workspace,
        kind=kind,
        amount=amount,
        key=key_or_new(idempotency_key, prefix=prefix),
        reason=require_reason(reason),
        actor=actor,
    )
    if created:
        logger.info(
            "credits %s: workspace=%s amount=%s entry=%s", verb, workspace.slug, amount, entry.pk
        )
    return entry


def credits_refund(
    *,
    settlement: CreditEntry,
    amount: int,
    reason: str,
    actor=None,
    idempotency_key: str | None = None,
) -> CreditEntry:
    """Give back credits charged for a request, at most what that request was charged."""
    if settlement.kind != EntryKind.SETTLE:
        raise ValueError("Only settled usage can be refunded; use an adjustment otherwise.")
    require_amount(amount)
    reason = require_reason(reason)
    key = key_or_new(idempotency_key, prefix="refund")
    with transaction.atomic():
        # Serialize refunds of this workspace so two of them cannot both pass the cap below.
        ensure_account(settlement.workspace_id)
        CreditAccount.objects.select_for_update().filter(
            workspace_id=settlement.workspace_id
        ).exists()
        existing = existing_entry(settlement.workspace_id, key)
        if existing is not None:
            return replay(existing, kind=EntryKind.REFUND, amount=amount)
        refunded = settlement.refunds.aggregate(total=Sum("amount"))["total"] or 0
        if refunded + amount > settlement.charged:
            raise CreditsError(
                f"Cannot refund {amount:,} credits: the request was charged "
                f"{settlement.charged:,} and {refunded:,} were already refunded."
            )
        entry, _created = _post(
            workspace=settlement.workspace,
            kind=EntryKind.REFUND,
            amount=amount,
            key=key,
            reason=reason,
            actor=actor,
            settlement=settlement,
        )
        return entry


def _allowance_key(month: datetime.date) -> str:
    return f"allowance:{month:%Y-%m}"


def credits_monthly_allowance_grant(
    *, workspace: Workspace, month: datetime.date
) -> CreditEntry | None:
    """Grant a workspace its allowance for the month once; None if already granted or disabled."""
    amount = settings.AI_CREDITS_MONTHLY_ALLOWANCE
    if amount <= 0:
        return None
    key = _allowance_key(month)
    if existing_entry(workspace.pk, key) is not None:
        return None
    try:
        entry, created = _post(
            workspace=workspace,
            kind=EntryKind.GRANT,
            amount=amount,
            key=key,
            reason=f"Monthly AI credits allowance for {month:%B %Y}",
        )
    except IdempotencyConflictError:
        # Granted meanwhile under a different allowance setting: still granted once.
        return None
    return entry if created else None


def credits_monthly_allowance_grant_all(*, month: datetime.date) -> int:
    """Grant every workspace its allowance for the month; return how many were granted now."""
    granted = 0
    for workspace in Workspace.objects.order_by("pk").iterator(chunk_size=500):
        if credits_monthly_allowance_grant(workspace=workspace, month=month) is not None:
            granted += 1
    return granted
