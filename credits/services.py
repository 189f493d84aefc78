"""Writes to the credits ledger. Every service writes one entry and moves the balance in the
same transaction; see ``credits.models`` for the invariants the database keeps.

The hot path (hold, settle, release) locks nothing but the workspace's one account row, and
only for the length of one conditional ``UPDATE ... RETURNING`` plus one ``INSERT``.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from config.db import execute_prepared as _execute_prepared
from config.db import insert_row
from workspaces.models import Workspace

from .exceptions import (
    CreditsError,
    HoldAlreadyClosedError,
    IdempotencyConflictError,
    InsufficientCreditsError,
)
from .models import CreditAccount, CreditEntry, EntryKind

logger = logging.getLogger(__name__)

__all__ = [
    "ChargedRow",
    "CreditsError",
    "HoldAlreadyClosedError",
    "IdempotencyConflictError",
    "InsufficientCreditsError",
    "credits_adjust",
    "credits_grant",
    "credits_hold",
    "credits_monthly_allowance_grant",
    "credits_monthly_allowance_grant_all",
    "credits_refund",
    "credits_release",
    "credits_settle",
]

MAX_IDEMPOTENCY_KEY_LENGTH = 200
# Far above any real amount (10^15 credits = US$100 billion), far below bigint overflow.
MAX_AMOUNT = 10**15


@dataclass
class ChargedRow:
    """A row to commit together with a settlement, such as the usage row of the request it
    charges: ``values`` maps columns to database values, and ``charged_column`` receives the
    credits the settlement charged. After ``credits_settle`` its primary key is in ``pk``."""

    table: str
    values: dict[str, Any]
    charged_column: str
    pk: int | None = field(default=None, init=False)


class _NotCovered(Exception):
    """Internal: the balance could not cover a debit; raised to roll the transaction back."""


def _apply_delta(*, workspace_id: int, delta: int, require_cover: bool) -> int | None:
    """Move a balance by ``delta``; return the new balance, or None if no row was changed.

    With ``require_cover`` the row changes only when the result stays >= 0, so a debit and its
    check are one statement: concurrent debits queue on the row lock and each sees the
    balance the previous one left.
    """
    table = connection.ops.quote_name(CreditAccount._meta.db_table)
    sql = f"UPDATE {table} SET balance = balance + %s WHERE workspace_id = %s"  # noqa: S608
    params: list[int] = [delta, workspace_id]
    if require_cover:
        sql += " AND balance + %s >= 0"
        params.append(delta)
    with connection.cursor() as cursor:
        cursor.execute(sql + " RETURNING balance", params)
        row = cursor.fetchone()
    return None if row is None else row[0]


_ENTRY_INSERT_COLUMNS = (
    "workspace_id, kind, amount, balance_after, charged, written_off, idempotency_key,"
    " hold_id, reason, created_at"
)


def _append(
    *,
    workspace_id: int,
    kind: str,
    delta: int,
    require_cover: bool,
    key: str,
    charged: int = 0,
    hold_id: int | None = None,
    with_row: ChargedRow | None = None,
) -> CreditEntry | None:
    """Move the balance by ``delta`` and append its entry; None if the balance can't cover it.

    On PostgreSQL this is ONE statement (a data-modifying CTE): in autocommit it is its own
    transaction, so a hold or a settle costs one round trip and one commit, and the account
    row stays locked only for that statement. A unique-key violation fails the whole
    statement, so a repeated operation never moves the balance. ``with_row`` (PostgreSQL
    only) is inserted by the same statement, only if the entry is.
    """
    now = timezone.now()
    account_table = connection.ops.quote_name(CreditAccount._meta.db_table)
    entry_table = connection.ops.quote_name(CreditEntry._meta.db_table)
    cover = " AND balance + %(delta)s::bigint >= 0" if require_cover else ""
    params = {
        "ws": workspace_id,
        "kind": kind,
        "delta": delta,
        "charged": charged,
        "key": key,
        "hold": hold_id,
        "now": now,
    }
    if connection.vendor == "postgresql":
        account = (
            f"account AS (UPDATE {account_table}"  # noqa: S608
            " SET balance = balance + %(delta)s::bigint"
            f" WHERE workspace_id = %(ws)s::bigint{cover} RETURNING balance)"
        )
        entry = (
            f"INSERT INTO {entry_table} ({_ENTRY_INSERT_COLUMNS})"  # noqa: S608
            " SELECT %(ws)s::bigint, %(kind)s::varchar, %(delta)s::bigint, account.balance,"
            " %(charged)s::bigint, 0, %(key)s::varchar, %(hold)s::bigint, '',"
            " %(now)s::timestamptz FROM account RETURNING id, balance_after, charged"
        )
        if with_row is None:
            sql = f"WITH {account} {entry}"
        else:
            written, row_params = _with_row_insert(with_row)
            sql = (
                f"WITH {account}, entry AS ({entry}), written AS ({written})"  # noqa: S608
                " SELECT entry.id, entry.balance_after, entry.charged, written.id"
                " FROM entry, written"
            )
            params.update(row_params)
        # Inside a caller's transaction a failed statement would abort it: use a savepoint.
        savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
        with savepoint:
            row = _execute_prepared(sql, params)
    else:
        with transaction.atomic():
            balance = _apply_delta(
                workspace_id=workspace_id, delta=delta, require_cover=require_cover
            )
            if balance is None:
                return None
            params["balance"] = balance
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {entry_table} ({_ENTRY_INSERT_COLUMNS})"  # noqa: S608
                    " VALUES (%(ws)s, %(kind)s, %(delta)s, %(balance)s, %(charged)s, 0, %(key)s,"
                    " %(hold)s, '', %(now)s) RETURNING id, balance_after",
                    params,
                )
                row = cursor.fetchone()
    if row is None:
        return None
    if with_row is not None:
        with_row.pk = row[3]
    entry = CreditEntry(
        id=row[0],
        workspace_id=workspace_id,
        kind=kind,
        amount=delta,
        balance_after=row[1],
        charged=charged,
        idempotency_key=key,
        hold_id=hold_id,
        created_at=now,
    )
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


def _with_row_insert(row: ChargedRow) -> tuple[str, dict[str, Any]]:
    """The INSERT of ``row`` from the ``entry`` CTE, and its parameters."""
    quote = connection.ops.quote_name
    row_params = {f"row_{index}": value for index, value in enumerate(row.values.values())}
    columns = ", ".join(quote(c) for c in [*row.values, row.charged_column])
    placeholders = ", ".join(f"%({name})s" for name in row_params)
    sql = (
        f"INSERT INTO {quote(row.table)} ({columns})"  # noqa: S608 - names from model metadata
        f" SELECT {placeholders}, entry.charged FROM entry RETURNING id"
    )
    return sql, row_params


def _ensure_account(workspace_id: int) -> None:
    CreditAccount.objects.bulk_create(
        [CreditAccount(workspace_id=workspace_id)], ignore_conflicts=True
    )


def _current_balance(workspace_id: int) -> int:
    balance = (
        CreditAccount.objects.filter(workspace_id=workspace_id)
        .values_list("balance", flat=True)
        .first()
    )
    return balance or 0


def _require_amount(amount: int, *, allow_zero: bool = False, allow_negative: bool = False) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"A credit amount must be a whole number, not {amount!r}.")
    if amount == 0 and not allow_zero:
        raise ValueError("A credit amount cannot be zero.")
    if amount < 0 and not allow_negative:
        raise ValueError(f"A credit amount cannot be negative ({amount}).")
    if abs(amount) > MAX_AMOUNT:
        raise ValueError(f"A credit amount is at most {MAX_AMOUNT:,} credits.")


def _require_key(idempotency_key: str) -> str:
    key = (idempotency_key or "").strip()
    if not key:
        raise ValueError("An idempotency key is required.")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValueError(f"An idempotency key is at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters.")
    return key


def _key_or_new(idempotency_key: str | None, *, prefix: str) -> str:
    """Return the caller's idempotency key, checked, or a fresh one for a one-off operation."""
    if idempotency_key is None:
        return f"{prefix}:{uuid.uuid4()}"
    return _require_key(idempotency_key)


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("A reason is required: say why these credits change.")
    if len(reason) > 500:
        raise ValueError("A reason is at most 500 characters.")
    return reason


def _existing(workspace_id: int, key: str) -> CreditEntry | None:
    return CreditEntry.objects.filter(workspace_id=workspace_id, idempotency_key=key).first()


def _replay(existing: CreditEntry, *, kind: str, amount: int) -> CreditEntry:
    """Return the first result of a repeated operation, or refuse a key reused differently."""
    if existing.kind != kind or existing.amount != amount:
        raise IdempotencyConflictError(
            f"Idempotency key '{existing.idempotency_key}' was already used for a "
            f"{existing.kind} of {existing.amount:+,} credits; this {kind} of {amount:+,} "
            "credits needs a new key."
        )
    return existing


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
    """Write one non-hold entry (grant, refund, adjustment) and move the balance by ``amount``.

    Return the entry and whether it was written now (False: the key's first result)."""
    try:
        with transaction.atomic():
            _ensure_account(workspace.pk)
            balance = _apply_delta(
                workspace_id=workspace.pk, delta=amount, require_cover=amount < 0
            )
            if balance is None:
                raise _NotCovered
            entry = CreditEntry.objects.create(
                workspace=workspace,
                kind=kind,
                amount=amount,
                balance_after=balance,
                idempotency_key=key,
                reason=reason,
                actor=actor,
                settlement=settlement,
            )
            return entry, True
    except IntegrityError:
        existing = _existing(workspace.pk, key)
        if existing is None:
            raise
        return _replay(existing, kind=kind, amount=amount), False
    except _NotCovered:
        existing = _existing(workspace.pk, key)
        if existing is not None:
            return _replay(existing, kind=kind, amount=amount), False
        raise InsufficientCreditsError(
            balance=_current_balance(workspace.pk), needed=-amount
        ) from None


def credits_grant(
    *,
    workspace: Workspace,
    amount: int,
    reason: str,
    actor=None,
    idempotency_key: str | None = None,
) -> CreditEntry:
    """Add credits to a workspace's balance, saying why and who."""
    _require_amount(amount)
    reason = _require_reason(reason)
    key = _key_or_new(idempotency_key, prefix="grant")
    entry, created = _post(
        workspace=workspace,
        kind=EntryKind.GRANT,
        amount=amount,
        key=key,
        reason=reason,
        actor=actor,
    )
    if created:
        logger.info(
            "credits granted: workspace=%s amount=%s entry=%s", workspace.slug, amount, entry.pk
        )
    return entry


def credits_adjust(
    *,
    workspace: Workspace,
    amount: int,
    reason: str,
    actor=None,
    idempotency_key: str | None = None,
) -> CreditEntry:
    """Correct a balance by a signed amount; a debit never takes it below zero."""
    _require_amount(amount, allow_negative=True)
    reason = _require_reason(reason)
    key = _key_or_new(idempotency_key, prefix="adjust")
    entry, _created = _post(
        workspace=workspace,
        kind=EntryKind.ADJUSTMENT,
        amount=amount,
        key=key,
        reason=reason,
        actor=actor,
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
    _require_amount(amount)
    reason = _require_reason(reason)
    key = _key_or_new(idempotency_key, prefix="refund")
    with transaction.atomic():
        # Serialize refunds of this workspace so two of them cannot both pass the cap below.
        _ensure_account(settlement.workspace_id)
        CreditAccount.objects.select_for_update().filter(
            workspace_id=settlement.workspace_id
        ).exists()
        existing = _existing(settlement.workspace_id, key)
        if existing is not None:
            return _replay(existing, kind=EntryKind.REFUND, amount=amount)
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


def credits_hold(*, workspace: Workspace, amount: int, idempotency_key: str) -> CreditEntry:
    """Set aside the most a request can cost, or raise InsufficientCreditsError."""
    _require_amount(amount)
    key = _require_key(idempotency_key)
    try:
        entry = _append(
            workspace_id=workspace.pk,
            kind=EntryKind.HOLD,
            delta=-amount,
            require_cover=True,
            key=key,
        )
        if entry is None:
            raise _NotCovered
        entry.workspace = workspace
        return entry
    except IntegrityError:
        # The same key committed first: this transaction's debit was rolled back with it.
        existing = _existing(workspace.pk, key)
        if existing is None:
            raise
        return _replay(existing, kind=EntryKind.HOLD, amount=-amount)
    except _NotCovered:
        existing = _existing(workspace.pk, key)
        if existing is not None:
            return _replay(existing, kind=EntryKind.HOLD, amount=-amount)
        raise InsufficientCreditsError(
            balance=_current_balance(workspace.pk), needed=amount
        ) from None


def _close_replay(hold: CreditEntry, *, kind: str, charged: int | None) -> CreditEntry:
    existing = CreditEntry.objects.filter(hold=hold).first()
    if existing is None:
        raise HoldAlreadyClosedError(f"Hold {hold.pk} could not be closed.")
    if kind == EntryKind.SETTLE and existing.kind == EntryKind.SETTLE:
        first_usage = existing.charged + existing.written_off
        if first_usage != charged:
            raise IdempotencyConflictError(
                f"Hold {hold.pk} was already settled for {first_usage:,} credits; "
                f"it cannot be settled again for {charged:,}."
            )
    elif kind == EntryKind.SETTLE and existing.kind == EntryKind.RELEASE:
        # The request's usage arrived after its hold was given back: the platform absorbs it
        # rather than charge a balance that never held the credits for it.
        logger.warning(
            "credits settle after release: hold=%s usage=%s not charged", hold.pk, charged
        )
    return existing


def _closed(entry: CreditEntry | None, hold: CreditEntry) -> CreditEntry:
    if entry is None:
        # Only possible if the account row vanished, which PROTECT on its entries prevents.
        raise CreditsError(f"Workspace {hold.workspace_id} has no credit account.")
    entry.hold = hold
    return entry


def _require_hold(hold: CreditEntry) -> None:
    if hold.kind != EntryKind.HOLD or hold.pk is None:
        raise ValueError("Only a saved hold entry can be settled or released.")


def credits_settle(
    *, hold: CreditEntry, amount: int, with_row: ChargedRow | None = None
) -> CreditEntry:
    """Charge a request's real cost against its hold and give back the rest of the hold.

    Usage above the hold is taken from the balance as far as the balance covers it; the rest
    is written off (recorded on the entry), so the balance never goes below zero. A second
    call for the same hold returns the first result. ``with_row`` is committed with the
    settlement, its ``charged_column`` holding what the settlement charged.
    """
    _require_hold(hold)
    _require_amount(amount, allow_zero=True)
    if with_row is None:
        return _settle(hold=hold, amount=amount)
    if connection.vendor == "postgresql" and amount <= -hold.amount:
        # The usual case: one statement writes the entry and the row, and commits both.
        try:
            return _closed(_settle_entry(hold, amount, with_row=with_row), hold)
        except IntegrityError:
            pass  # closed already: the path below returns the first result
    with transaction.atomic():
        entry = _settle(hold=hold, amount=amount)
        with_row.pk = insert_row(
            with_row.table, {**with_row.values, with_row.charged_column: entry.charged}
        )
    return entry


def _settle_entry(
    hold: CreditEntry, amount: int, *, with_row: ChargedRow | None = None
) -> CreditEntry | None:
    held = -hold.amount
    return _append(
        workspace_id=hold.workspace_id,
        kind=EntryKind.SETTLE,
        delta=held - amount,
        require_cover=False,
        key=f"settle:{hold.pk}",
        charged=amount,
        hold_id=hold.pk,
        with_row=with_row,
    )


def _settle(*, hold: CreditEntry, amount: int) -> CreditEntry:
    held = -hold.amount
    excess = amount - held
    try:
        if excess <= 0:
            return _closed(_settle_entry(hold, amount), hold)
        with transaction.atomic():
            # Rare: the input estimate was low. Lock the row to know what can be collected.
            balance = (
                CreditAccount.objects.select_for_update()
                .values_list("balance", flat=True)
                .get(workspace_id=hold.workspace_id)
            )
            collected = min(excess, balance)
            if collected:
                balance = _apply_delta(
                    workspace_id=hold.workspace_id, delta=-collected, require_cover=True
                )
            return CreditEntry.objects.create(
                workspace_id=hold.workspace_id,
                kind=EntryKind.SETTLE,
                amount=-collected,
                balance_after=balance,
                charged=held + collected,
                written_off=excess - collected,
                idempotency_key=f"settle:{hold.pk}",
                hold=hold,
            )
    except IntegrityError:
        return _close_replay(hold, kind=EntryKind.SETTLE, charged=amount)


def credits_release(*, hold: CreditEntry) -> CreditEntry:
    """Give a whole hold back (the request failed or was abandoned before any usage)."""
    _require_hold(hold)
    held = -hold.amount
    try:
        return _closed(
            _append(
                workspace_id=hold.workspace_id,
                kind=EntryKind.RELEASE,
                delta=held,
                require_cover=False,
                key=f"release:{hold.pk}",
                hold_id=hold.pk,
            ),
            hold,
        )
    except IntegrityError:
        return _close_replay(hold, kind=EntryKind.RELEASE, charged=None)


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
    if _existing(workspace.pk, key) is not None:
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
