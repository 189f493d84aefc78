"""Credit reservations of AI requests, as prepaid credit control does it (RFC 4006: reserve,
update, terminate).

- ``credits_hold`` reserves what a request's start needs (a hold entry and its open
  ``CreditReservation``), refused past the balance, the member's limit or the workspace's
  open-request limit;
- ``credits_extend`` adds to it as the request produces more (an extend entry), as far as
  the balance and the member's limit allow;
- ``credits_reservations_renew`` renews the lease of the reservations a process serves;
- ``credits_settle`` charges the real cost and gives back the rest, or, after a release,
  charges what the balance covers (a late settle); any usage the balance cannot cover is
  recorded as written off (a shortfall);
- ``credits_release`` gives a reservation back whole;
- ``credits_reservations_charge_expired`` (``credits_release_stale_holds``) charges those whose
  lease expired their whole ``held``: their process died and the usage was never seen, so the
  reservation is the bound charged (docs/decisions/107). In the same transaction it hands
  each to ``CREDITS_EXPIRED_RESERVATION_RECORDER`` (the AI gateway writes the usage row), so
  credits imports nothing of its callers.

Each closes the reservation at most once, under its row lock (see ``ledger`` for the order).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from workspaces.models import Workspace

from ..exceptions import (
    ConcurrencyLimitError,
    CreditsError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    ReservationExpiredError,
)
from ..models import (
    CreditAccount,
    CreditEntry,
    CreditReservation,
    EntryKind,
    ReservationState,
)
from .ledger import NotCovered, existing_entry, ledger_post, replay, require_amount, require_key
from .limits import (
    OverLimit,
    count_against_limit,
    limit_refusal,
    member_limit_for,
    month_of,
    uncount,
)

logger = logging.getLogger("credits.services")

STALE_HOLD_REASON = (
    "charged its whole reservation by the stale-hold sweep: the request's process died "
    "(stopped renewing it), so its usage was never seen"
)


@dataclass(frozen=True, slots=True)
class ExpiredReservation:
    """One reservation the sweep charged whole: its process died."""

    workspace_id: int
    hold_id: int
    user_id: int | None
    credits: int  # charged: what the reservation held
    created_at: datetime.datetime  # the hold: when the request began
    renewed_at: datetime.datetime  # the process's last sign of life
    context: Any  # what the caller stored with the reservation (``credits_hold``)


def _require_hold(hold: CreditEntry) -> None:
    if hold.kind != EntryKind.HOLD or hold.pk is None:
        raise ValueError("Only a saved hold entry can be extended, settled or released.")


def credits_hold(
    *,
    workspace: Workspace,
    amount: int,
    idempotency_key: str,
    user=None,
    max_open: int | None = None,
    context: Any = None,
) -> CreditEntry:
    """Reserve credits for a request, or raise InsufficientCreditsError (balance),
    MemberCreditLimitError (the user's monthly limit) or ConcurrencyLimitError (``max_open``
    requests of the workspace already in progress). ``context`` (JSON) is stored with the
    reservation, unread, for the recorder of a reservation whose process dies."""
    require_amount(amount)
    key = require_key(idempotency_key)
    user_id = getattr(user, "pk", None)
    limit = member_limit_for(workspace_id=workspace.pk, user_id=user_id) if user_id else None
    month = month_of(timezone.now())

    def member(_applied: int) -> None:
        if user_id is not None:
            count_against_limit(
                workspace_id=workspace.pk,
                user_id=user_id,
                month=month,
                amount=amount,
                limit=limit.monthly_limit,
            )

    try:
        posted = ledger_post(
            workspace_id=workspace.pk,
            kind=EntryKind.HOLD,
            amount=-amount,
            key=key,
            open_delta=1,
            max_open=max_open,
            member=member,
            fields={"actor_id": user_id},
            then=lambda entry: CreditReservation.objects.create(
                hold=entry,
                workspace_id=workspace.pk,
                held=amount,
                renewed_at=entry.created_at,
                context=context,
            ),
        )
        return posted.entry
    except OverLimit:
        existing = existing_entry(workspace.pk, key)
        if existing is not None:
            return replay(existing, kind=EntryKind.HOLD, amount=-amount)
        raise limit_refusal(
            workspace=workspace, user_id=user_id, month=month, amount=amount, limit=limit
        ) from None
    except NotCovered:
        account = (
            CreditAccount.objects.filter(workspace_id=workspace.pk)
            .values_list("balance", "open_reservations")
            .first()
        )
        balance, open_now = account or (0, 0)
        if max_open is not None and open_now >= max_open and balance >= amount:
            raise ConcurrencyLimitError(limit=max_open) from None
        raise InsufficientCreditsError(balance=balance, needed=amount) from None


@dataclass(frozen=True, slots=True)
class Extension:
    """What ``credits_extend_checked`` added, and what stopped it adding all it was asked."""

    taken: int
    stopped_by: str = ""  # "" (all added), BALANCE, MEMBER_LIMIT or CLOSED


BALANCE, MEMBER_LIMIT, CLOSED = "balance", "member_limit", "closed"


def credits_extend(*, hold: CreditEntry, amount: int) -> int:
    """Add up to ``amount`` credits to an open reservation, as far as the balance and the
    member's limit allow; return the credits added (0: none, or the reservation is closed)."""
    return credits_extend_checked(hold=hold, amount=amount).taken


def credits_extend_checked(*, hold: CreditEntry, amount: int) -> Extension:
    """``credits_extend``, saying what stopped it short: the workspace's balance, the
    member's monthly limit, or the reservation being closed."""
    _require_hold(hold)
    require_amount(amount)
    number = (
        CreditReservation.objects.filter(pk=hold.pk, state=ReservationState.OPEN)
        .values_list("extensions", flat=True)
        .first()
    )
    if number is None:
        return Extension(0, CLOSED)
    limit = (
        member_limit_for(workspace_id=hold.workspace_id, user_id=hold.actor_id)
        if hold.actor_id
        else None
    )
    reservation = CreditReservation.objects.filter(
        pk=hold.pk, state=ReservationState.OPEN, extensions=number
    )

    def lock() -> None:
        if not reservation.select_for_update().exists():
            raise _Closed

    def member(_amount: int) -> None:
        if hold.actor_id is not None:
            count_against_limit(
                workspace_id=hold.workspace_id,
                user_id=hold.actor_id,
                month=month_of(hold.created_at),
                amount=amount,
                limit=limit.monthly_limit,
            )

    def then(entry: CreditEntry) -> None:
        taken = -entry.amount
        uncount(hold, taken - amount)  # counted in full first, under the same lock
        reservation.update(held=F("held") + taken, extensions=number + 1, renewed_at=timezone.now())

    try:
        posted = ledger_post(
            workspace_id=hold.workspace_id,
            kind=EntryKind.EXTEND,
            amount=-amount,
            key=f"extend:{hold.pk}:{number + 1}",
            clip=True,
            allow_zero=False,
            first=lock,
            member=member,
            fields={"hold": hold, "actor_id": hold.actor_id},
            then=then,
        )
    except NotCovered:
        return Extension(0, BALANCE)
    except OverLimit:
        return Extension(0, MEMBER_LIMIT)
    except _Closed:
        return Extension(0, CLOSED)
    taken = -posted.entry.amount if posted.created else 0
    return Extension(taken, BALANCE if taken < amount else "")


class _Closed(Exception):
    """Internal: the reservation is no longer open (or changed) under this caller."""


def credits_reservations_renew(*, hold_ids: list[int]) -> int:
    """Renew the lease of these open reservations (their process is alive); return how many."""
    if not hold_ids:
        return 0
    return CreditReservation.objects.filter(pk__in=hold_ids, state=ReservationState.OPEN).update(
        renewed_at=timezone.now()
    )


def credits_settle(
    *,
    hold: CreditEntry,
    amount: int,
    held: int | None = None,
    then: Callable[[CreditEntry], None] | None = None,
) -> CreditEntry:
    """Charge a request's real cost against its reservation and give back the rest.

    Usage above the reservation is taken from the balance as far as it covers it; the
    shortfall is recorded on the entry (``written_off``) so the balance never goes below
    zero. After a release (the sweep took the reservation for dead), the whole cost is
    charged that way: a late settle. After the sweep charged it whole (its lease expired),
    raises ReservationExpiredError: it is never charged twice. A second call returns the
    first result. ``held`` is the caller's own count of what the reservation holds (saves
    reading it). ``then(entry)`` runs in the settlement's transaction when it settles now
    (not on a repeat): the caller's usage row is written there, with no transaction (and
    savepoint) of the caller's around this one.
    """
    _require_hold(hold)
    require_amount(amount, allow_zero=True)
    if held is None:
        held = (
            CreditReservation.objects.filter(pk=hold.pk, state=ReservationState.OPEN)
            .values_list("held", flat=True)
            .first()
        )
    if held is not None:
        try:
            return _settle(hold, amount, held=held, closing=True, then_too=then)
        except _Closed:
            pass
    state = CreditReservation.objects.filter(pk=hold.pk).values_list("state", flat=True).first()
    if state is None:
        raise CreditsError(f"Hold {hold.pk} has no reservation.")
    if state == ReservationState.SETTLED:
        return _settle_replay(hold, amount)
    if state == ReservationState.EXPIRED:
        raise _expired(hold)
    logger.warning("credits late settle: hold=%s usage=%s", hold.pk, amount)
    return _settle(hold, amount, held=0, closing=False, then_too=then)


def _expired(hold: CreditEntry) -> ReservationExpiredError:
    charged = (
        CreditEntry.objects.filter(hold=hold, kind=EntryKind.SETTLE)
        .values_list("charged", flat=True)
        .first()
    )
    logger.warning("credits settle after the sweep charged it: hold=%s", hold.pk)
    return ReservationExpiredError(hold_id=hold.pk, charged=charged or 0)


def _settle(
    hold: CreditEntry,
    amount: int,
    *,
    held: int,
    closing: bool,
    expired_before: datetime.datetime | None = None,
    then_too: Callable[[CreditEntry], None] | None = None,
) -> CreditEntry:
    """Settle ``amount`` against ``held``. ``expired_before``: the sweep's, closing only a
    reservation not renewed since (state ``expired``), ``then_too`` run in its transaction."""
    excess = amount - held
    reservation = CreditReservation.objects.filter(
        pk=hold.pk, state=ReservationState.OPEN, held=held
    )
    if expired_before is not None:
        reservation = reservation.filter(renewed_at__lt=expired_before)

    def close() -> None:
        closed = reservation.update(
            state=ReservationState.SETTLED if expired_before is None else ReservationState.EXPIRED,
            closed_at=timezone.now(),
        )
        if not closed:
            raise _Closed

    def fields(applied: int) -> dict:
        collected = -applied if excess > 0 else 0
        return {
            "hold": hold,
            "actor_id": hold.actor_id,
            "charged": amount if excess <= 0 else held + collected,
            "written_off": max(0, excess - collected),
            "reason": "" if expired_before is None else STALE_HOLD_REASON,
        }

    def then(entry: CreditEntry) -> None:
        if entry.written_off:
            uncount(hold, -entry.written_off)  # counted in full first, under the same lock
            logger.warning(
                "credits shortfall: hold=%s usage=%s written off=%s",
                hold.pk,
                amount,
                entry.written_off,
            )
        if then_too is not None:
            then_too(entry)

    return ledger_post(
        workspace_id=hold.workspace_id,
        kind=EntryKind.SETTLE,
        amount=held - amount,
        key=f"settle:{hold.pk}",
        clip=excess > 0,
        open_delta=-1 if closing else 0,
        first=close if closing else None,
        member=lambda _amount: uncount(hold, amount - held),
        fields=fields,
        then=then,
    ).entry


def _settle_replay(hold: CreditEntry, amount: int) -> CreditEntry:
    existing = CreditEntry.objects.get(hold=hold, kind=EntryKind.SETTLE)
    first_usage = existing.charged + existing.written_off
    if first_usage != amount:
        raise IdempotencyConflictError(
            f"Hold {hold.pk} was already settled for {first_usage:,} credits; "
            f"it cannot be settled again for {amount:,}."
        )
    return existing


def _release(
    hold: CreditEntry, *, reason: str, renewed_before: datetime.datetime | None = None
) -> tuple[CreditEntry | None, bool]:
    """Release an open reservation whole; return (its close, whether released now)."""
    for _attempt in range(3):
        held = (
            CreditReservation.objects.filter(pk=hold.pk, state=ReservationState.OPEN)
            .values_list("held", flat=True)
            .first()
        )
        if held is None:
            closes = CreditEntry.objects.filter(hold=hold).exclude(kind=EntryKind.EXTEND)
            return closes.last(), False
        reservation = CreditReservation.objects.filter(
            pk=hold.pk, state=ReservationState.OPEN, held=held
        )
        if renewed_before is not None:
            reservation = reservation.filter(renewed_at__lt=renewed_before)

        def close(reservation=reservation) -> None:
            if not reservation.update(state=ReservationState.RELEASED, closed_at=timezone.now()):
                raise _Closed

        try:
            posted = ledger_post(
                workspace_id=hold.workspace_id,
                kind=EntryKind.RELEASE,
                amount=held,
                key=f"release:{hold.pk}",
                open_delta=-1,
                first=close,
                member=lambda _amount, held=held: uncount(hold, -held),
                fields={"hold": hold, "reason": reason, "actor_id": hold.actor_id},
            )
        except _Closed:
            if (
                renewed_before is not None
                and CreditReservation.objects.filter(
                    pk=hold.pk, state=ReservationState.OPEN, renewed_at__gte=renewed_before
                ).exists()
            ):
                return None, False  # renewed meanwhile: its process is alive
            continue  # settled or extended meanwhile: look again
        return posted.entry, posted.created
    return None, False


def credits_release(*, hold: CreditEntry, reason: str = "") -> CreditEntry:
    """Give a whole reservation back (the request failed or ended before any usage)."""
    _require_hold(hold)
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise ValueError("A reason is at most 500 characters.")
    entry, released = _release(hold, reason=reason)
    if not released and entry is not None and entry.kind == EntryKind.SETTLE:
        state = CreditReservation.objects.filter(pk=hold.pk).values_list("state", flat=True)
        if state.first() == ReservationState.EXPIRED:
            raise _expired(hold)
    return entry


def credits_reservations_charge_expired(
    *, older_than: datetime.timedelta | None = None
) -> list[ExpiredReservation]:
    """Charge every open reservation whose lease was not renewed for ``older_than`` (default
    ``AI_HOLD_MAX_AGE_SECONDS``) its whole ``held``: its process died, the usage was never
    seen, and what it held is the bound that covers what the provider produced (a stream
    extends at three quarters of what it holds; docs/decisions/107). Return those charged now.

    Each is settled through the settle path (state ``expired``, the entry's reason says why)
    and handed, in the same transaction, to ``CREDITS_EXPIRED_RESERVATION_RECORDER`` (a dotted
    path; the AI gateway writes the request's one usage row). A live request renews its lease,
    so it is never charged; a settle racing with the sweep wins or loses on the reservation's
    row lock, and one that comes after raises ReservationExpiredError (never charged twice).
    """
    if older_than is None:
        older_than = datetime.timedelta(seconds=settings.AI_HOLD_MAX_AGE_SECONDS)
    cutoff = timezone.now() - older_than
    path = getattr(settings, "CREDITS_EXPIRED_RESERVATION_RECORDER", "")
    recorder = import_string(path) if path else None
    expired = (
        CreditReservation.objects.filter(state=ReservationState.OPEN, renewed_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", "held", "renewed_at", "context")
    )
    charged = []
    for hold_id, held, renewed_at, context in list(expired[:10_000]):
        hold = CreditEntry.objects.get(pk=hold_id)
        item = ExpiredReservation(
            workspace_id=hold.workspace_id,
            hold_id=hold_id,
            user_id=hold.actor_id,
            credits=held,
            created_at=hold.created_at,
            renewed_at=renewed_at,
            context=context,
        )
        try:
            _settle(
                hold,
                held,
                held=held,
                closing=True,
                expired_before=cutoff,
                then_too=(lambda _entry, item=item: recorder(item)) if recorder else None,
            )
        except _Closed:
            continue  # renewed, extended, settled or released meanwhile: its process is alive
        except Exception:
            logger.exception("credits stale reservation not charged: hold=%s", hold_id)
            continue
        charged.append(item)
        logger.warning(
            "credits stale reservation charged: workspace=%s hold=%s credits=%s",
            hold.workspace_id,
            hold_id,
            held,
        )
    return charged


def credits_release_stale_holds(*, older_than: datetime.timedelta | None = None) -> int:
    """Charge the reservations whose lease expired; return how many were charged now."""
    return len(credits_reservations_charge_expired(older_than=older_than))
