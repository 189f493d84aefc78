"""The one place that writes a ledger entry and moves a balance: ``ledger_post``.

Every write of the ledger (grants, adjustments, refunds, holds, extensions, settles,
releases) is a short caller of ``ledger_post``, which owns three things:

- **Lock order.** A caller that closes or extends a hold has locked its reservation row
  first; then the member's monthly counter (``member``), then the workspace's account row;
  the entry is inserted last. Every path takes them in this order, so two never deadlock.
- **The balance update.** One conditional UPDATE of the account whose row count is the
  verdict (``balance >= debit`` when the debit must be covered; ``open_reservations <
  max_open`` for a new request), or, with ``clip``, a debit of at most what the balance
  holds (read under the row lock). The entry stores the balance it left.
- **Idempotency.** ``(workspace, idempotency_key)`` is unique: a repeated key returns the
  first entry (same kind and amount) or raises IdempotencyConflictError.

One code path for SQLite and PostgreSQL, through the ORM; ``transaction.atomic()`` is a
savepoint inside a caller's transaction, so a refused write leaves the caller's usable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Subquery

from ..exceptions import IdempotencyConflictError
from ..models import CreditAccount, CreditEntry, EntryKind

MAX_IDEMPOTENCY_KEY_LENGTH = 200
# Far above any real amount (10^15 credits = US$100 billion), far below bigint overflow.
MAX_AMOUNT = 10**15


# What a request's reservation gives back (its unused part) moves the balance up without
# adding credits: it never lifts the alert state (``alerts.alert_after_change``).
GIVEN_BACK = frozenset({EntryKind.SETTLE, EntryKind.RELEASE})


class NotCovered(Exception):
    """Internal: the account refused the change (balance, or too many open requests)."""


@dataclass(frozen=True, slots=True)
class Posted:
    """What ``ledger_post`` did: the entry, whether it was written now (False: the key's first
    result), and the balance it left."""

    entry: CreditEntry
    created: bool


def ensure_account(workspace_id: int) -> None:
    CreditAccount.objects.bulk_create(
        [CreditAccount(workspace_id=workspace_id)], ignore_conflicts=True
    )


def current_balance(workspace_id: int) -> int:
    balance = (
        CreditAccount.objects.filter(workspace_id=workspace_id)
        .values_list("balance", flat=True)
        .first()
    )
    return balance or 0


def existing_entry(workspace_id: int, key: str) -> CreditEntry | None:
    return CreditEntry.objects.filter(workspace_id=workspace_id, idempotency_key=key).first()


def replay(existing: CreditEntry, *, kind: str, amount: int) -> CreditEntry:
    """Return the first result of a repeated operation, or refuse a key reused differently."""
    if existing.kind != kind or existing.amount != amount:
        raise IdempotencyConflictError(
            f"Idempotency key '{existing.idempotency_key}' was already used for a "
            f"{existing.kind} of {existing.amount:+,} credits; this {kind} of {amount:+,} "
            "credits needs a new key."
        )
    return existing


def ledger_post(
    *,
    workspace_id: int,
    kind: str,
    amount: int,
    key: str,
    cover: bool = True,
    clip: bool = False,
    allow_zero: bool = True,
    open_delta: int = 0,
    max_open: int | None = None,
    first: Callable[[], None] | None = None,
    member: Callable[[int], None] | None = None,
    fields: Callable[[int], dict[str, Any]] | dict[str, Any] | None = None,
    then: Callable[[CreditEntry], None] | None = None,
) -> Posted:
    """Write one entry of ``kind`` and move the balance by ``amount`` in one transaction.

    ``cover``: a debit the balance cannot cover is refused (NotCovered). ``clip``: a debit
    takes at most the balance instead (with ``allow_zero`` False an empty balance refuses).
    ``open_delta`` moves the count of open requests, refused past ``max_open``.
    ``first()`` runs before anything else (a caller's lock of its reservation row; it may
    raise to refuse), ``then(entry)`` after the entry is written, in the same transaction.
    ``member(amount)`` moves the member's counter first, by the amount asked (it may raise
    to refuse); a caller corrects it after a clip. ``fields`` are the entry's other columns,
    or a function of the amount applied. Raises NotCovered, or returns the first entry of a
    repeated key.
    """
    from .alerts import alert_after_change

    try:
        with transaction.atomic():
            applied = amount
            if first is not None:
                first()
            if member is not None:
                member(applied)
            accounts = accounts_now = CreditAccount.objects.filter(workspace_id=workspace_id)
            if clip and amount < 0:
                balance = (
                    accounts.select_for_update().values_list("balance", flat=True).first() or 0
                )
                applied = -min(-amount, balance)
                if applied == 0 and not allow_zero:
                    raise NotCovered
            elif cover and amount < 0:
                accounts = accounts.filter(balance__gte=-amount)
            if max_open is not None:
                accounts = accounts.filter(open_reservations__lt=max_open)
            changes: dict[str, Any] = {"balance": F("balance") + applied}
            if open_delta:
                changes["open_reservations"] = F("open_reservations") + open_delta
            if not accounts.update(**changes):
                raise NotCovered
            extra = fields(applied) if callable(fields) else (fields or {})
            entry = CreditEntry.objects.create(
                workspace_id=workspace_id,
                kind=kind,
                amount=applied,
                balance_after=Subquery(accounts_now.values("balance")[:1]),
                idempotency_key=key,
                **extra,
            )
            alert_after_change(
                workspace_id=workspace_id,
                balance=entry.balance_after,
                credited=applied > 0 and kind not in GIVEN_BACK,
            )
            if then is not None:
                then(entry)
            return Posted(entry, True)
    except (IntegrityError, NotCovered):
        # The same key committed first (this transaction's change was rolled back with it),
        # or a repeat is refused now only because the balance moved since the first result.
        existing = existing_entry(workspace_id, key)
        if existing is None:
            raise
        return Posted(existing if clip else replay(existing, kind=kind, amount=amount), False)


def require_amount(amount: int, *, allow_zero: bool = False, allow_negative: bool = False) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"A credit amount must be a whole number, not {amount!r}.")
    if amount == 0 and not allow_zero:
        raise ValueError("A credit amount cannot be zero.")
    if amount < 0 and not allow_negative:
        raise ValueError(f"A credit amount cannot be negative ({amount}).")
    if abs(amount) > MAX_AMOUNT:
        raise ValueError(f"A credit amount is at most {MAX_AMOUNT:,} credits.")


def require_key(idempotency_key: str) -> str:
    key = (idempotency_key or "").strip()
    if not key:
        raise ValueError("An idempotency key is required.")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValueError(f"An idempotency key is at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters.")
    return key


def key_or_new(idempotency_key: str | None, *, prefix: str) -> str:
    """Return the caller's idempotency key, checked, or a fresh one for a one-off operation."""
    if idempotency_key is None:
        return f"{prefix}:{uuid.uuid4()}"
    return require_key(idempotency_key)


def require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("A reason is required: say why these credits change.")
    if len(reason) > 500:
        raise ValueError("A reason is at most 500 characters.")
    return reason
