"""Writes to the credits ledger. Every service writes one entry and moves the balance in the
same transaction; see ``credits.models`` for the invariants the database keeps.

One code path for SQLite and PostgreSQL, through the ORM: a debit is
``CreditAccount.objects.filter(workspace_id=w, balance__gte=n).update(balance=F("balance") - n)``,
whose row count says whether the balance covered it, plus ``CreditEntry.objects.create(...)``,
both inside ``transaction.atomic()`` (a savepoint inside a caller's transaction, so a repeated
idempotency key leaves the caller's transaction usable). Concurrent debits queue on the
account row's lock and each sees the balance the previous one left. A hold with a user does
the same first on the member's monthly counter row (``MemberCreditUsage``); the counter is
always locked before the account, so the two never deadlock.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from workspaces.models import Membership, Workspace

from .exceptions import (
    CreditsError,
    HoldAlreadyClosedError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    MemberCreditLimitError,
)
from .models import (
    ALERT_RANK,
    AlertState,
    CreditAccount,
    CreditAlert,
    CreditEntry,
    CreditLimitEvent,
    EntryKind,
    MemberCreditLimit,
    MemberCreditUsage,
    MemberLimitDefault,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CreditsError",
    "HoldAlreadyClosedError",
    "IdempotencyConflictError",
    "InsufficientCreditsError",
    "MemberCreditLimitError",
    "credits_adjust",
    "credits_alert_email_send",
    "credits_grant",
    "credits_hold",
    "credits_member_limit_default_set",
    "credits_member_limit_set",
    "credits_monthly_allowance_grant",
    "credits_monthly_allowance_grant_all",
    "credits_refund",
    "credits_release",
    "credits_release_stale_holds",
    "credits_settle",
]

MAX_IDEMPOTENCY_KEY_LENGTH = 200
# Far above any real amount (10^15 credits = US$100 billion), far below bigint overflow.
MAX_AMOUNT = 10**15
STALE_HOLD_REASON = "released by the stale-hold sweep: the request's process died"


class _NotCovered(Exception):
    """Internal: the balance could not cover a debit; raised to roll the transaction back."""


class _OverLimit(Exception):
    """Internal: the member's monthly limit could not cover a hold."""


def _month_of(moment: datetime.datetime) -> datetime.date:
    return moment.astimezone(datetime.UTC).date().replace(day=1)


def _move_balance(*, workspace_id: int, delta: int, require_cover: bool) -> tuple[int, str] | None:
    """Move a balance by ``delta``; return (new balance, alert state), or None if the account
    is missing or, with ``require_cover``, cannot cover a debit. Runs inside a transaction.

    The condition and the change are one UPDATE, so the row count is the verdict; the read
    after it sees this transaction's own change (the row stays locked until commit).
    """
    accounts = CreditAccount.objects.filter(workspace_id=workspace_id)
    if require_cover and delta < 0:
        accounts = accounts.filter(balance__gte=-delta)
    if not accounts.update(balance=F("balance") + delta):
        return None
    return CreditAccount.objects.values_list("balance", "alert_state").get(
        workspace_id=workspace_id
    )


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


# --- balance alerts -----------------------------------------------------------------------


def low_balance_threshold() -> int:
    """The balance under which a workspace is low on credits (0 without an allowance)."""
    allowance = max(settings.AI_CREDITS_MONTHLY_ALLOWANCE, 0)
    return -(-allowance * settings.AI_CREDITS_LOW_BALANCE_PERCENT // 100)


def alert_state_for(balance: int) -> str:
    """The alert state a balance is in: empty at zero, low under the threshold, else ok."""
    if balance <= 0:
        return AlertState.EMPTY
    if balance < low_balance_threshold():
        return AlertState.LOW
    return AlertState.OK


def _alert_after_change(*, workspace_id: int, balance: int, state: str, credited: bool) -> None:
    """Move the workspace's alert state after a balance change in this transaction.

    A debit can only make the state worse (ok → low → empty): the first transaction whose
    conditional UPDATE moves it writes the alert and, on commit, enqueues its e-mail. Credits
    *added* (grant, refund, positive adjustment) bring it back to ok when they lift the
    balance to the threshold; a release or a settle giving back an unused hold does not, so a
    balance hovering at the threshold does not e-mail on every request.
    """
    target = alert_state_for(balance)
    if target == AlertState.OK:
        if credited and state != AlertState.OK:
            CreditAccount.objects.filter(workspace_id=workspace_id).exclude(
                alert_state=AlertState.OK
            ).update(alert_state=AlertState.OK)
        return
    if credited or ALERT_RANK[target] <= ALERT_RANK[state]:
        return
    better = [s for s, rank in ALERT_RANK.items() if rank < ALERT_RANK[target]]
    won = CreditAccount.objects.filter(workspace_id=workspace_id, alert_state__in=better).update(
        alert_state=target
    )
    if not won:
        return
    alert = CreditAlert.objects.create(
        workspace_id=workspace_id, state=target, balance=balance, threshold=low_balance_threshold()
    )
    logger.info("credits alert: workspace=%s state=%s alert=%s", workspace_id, target, alert.pk)

    def enqueue() -> None:
        from .tasks import credits_alert_email

        credits_alert_email.delay(alert.pk)

    # robust: the ledger write is committed; a broker that is down must not fail the request
    # that crossed the threshold (the alert row stays, with emailed_at empty, for support).
    transaction.on_commit(enqueue, robust=True)


def _alert_message(alert: CreditAlert) -> tuple[str, str]:
    workspace = alert.workspace
    allowance = settings.AI_CREDITS_MONTHLY_ALLOWANCE
    percent = settings.AI_CREDITS_LOW_BALANCE_PERCENT
    url = f"{settings.SITE_URL.rstrip('/')}/w/{workspace.slug}/usage/"
    if alert.state == AlertState.EMPTY:
        subject = f"[{workspace.name}] AI credits used up"
        opening = (
            f"The AI credits of the workspace {workspace.name} are used up (balance: "
            f"{alert.balance:,} credits). AI requests paid with credits are refused until "
            "credits are added."
        )
    else:
        subject = f"[{workspace.name}] AI credits running low"
        opening = (
            f"The AI credits of the workspace {workspace.name} are running low: "
            f"{alert.balance:,} credits left, below {percent}% of the monthly allowance of "
            f"{allowance:,} credits."
        )
    body = (
        f"{opening}\n\n"
        "What you can do: wait for the monthly allowance, ask support to grant credits, or "
        "save the workspace's own Anthropic key in Workspace Settings → LLM Key (requests "
        "then use no credits).\n\n"
        f"Usage: {url}\n\n"
        "You receive this once per crossing; the next one comes only after credits have been "
        "added again.\n"
    )
    return subject, body


def credits_alert_email_send(*, alert_id: int) -> bool:
    """E-mail the workspace admins about one balance alert, once; True if sent now.

    The alert row stays locked while the e-mail goes out, so a duplicate task waits and then
    finds it sent; a failed send rolls back and leaves it for the task's retry.
    """
    with transaction.atomic():
        alert = (
            CreditAlert.objects.select_for_update()
            .select_related("workspace")
            .filter(pk=alert_id)
            .first()
        )
        if alert is None or alert.emailed_at is not None:
            return False
        recipients = sorted(
            Membership.objects.filter(workspace_id=alert.workspace_id, role=Membership.Role.ADMIN)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
        if recipients:
            subject, body = _alert_message(alert)
            send_mail(subject, body, None, recipients)
        alert.emailed_at = timezone.now()
        alert.recipients = len(recipients)
        alert.save(update_fields=["emailed_at", "recipients"])
    return bool(recipients)


# --- grants, adjustments, refunds ----------------------------------------------------------


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
            moved = _move_balance(workspace_id=workspace.pk, delta=amount, require_cover=True)
            if moved is None:
                raise _NotCovered
            balance, state = moved
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
            _alert_after_change(
                workspace_id=workspace.pk, balance=balance, state=state, credited=amount > 0
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


# --- member limits -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberLimit:
    """A member's monthly limit (None: no limit) and where it comes from."""

    monthly_limit: int | None
    source: str  # "member", "workspace default" or "none"


def member_limit_for(*, workspace_id: int, user_id: int) -> MemberLimit:
    """Return the monthly credit limit that applies to this member now."""
    own = MemberCreditLimit.objects.filter(workspace_id=workspace_id, user_id=user_id).first()
    if own is not None:
        return MemberLimit(own.monthly_limit, "member")
    default = (
        CreditAccount.objects.filter(workspace_id=workspace_id)
        .values_list("member_limit_default", flat=True)
        .first()
    )
    if default == MemberLimitDefault.EQUAL_SHARE:
        return MemberLimit(equal_share(workspace_id=workspace_id), "workspace default")
    return MemberLimit(None, "none")


def equal_share(*, workspace_id: int) -> int | None:
    """The monthly allowance split evenly among the workspace's members (None: no allowance)."""
    allowance = settings.AI_CREDITS_MONTHLY_ALLOWANCE
    if allowance <= 0:
        return None
    members = Membership.objects.filter(workspace_id=workspace_id).count()
    return allowance // max(members, 1)


def _count_against_limit(
    *, workspace_id: int, user_id: int, month: datetime.date, amount: int, limit: int | None
) -> None:
    """Add ``amount`` to the member's monthly usage; raise _OverLimit past ``limit``.

    The month's counter row exists after the member's first request of the month, so the
    UPDATE comes first; only when it changes nothing is the row created (if missing: a
    concurrent request may have made it) and the UPDATE tried once more.
    """
    counters = MemberCreditUsage.objects.filter(
        workspace_id=workspace_id, user_id=user_id, month=month
    )
    if limit is not None:
        counters = counters.filter(used__lte=limit - amount)
    if counters.update(used=F("used") + amount):
        return
    MemberCreditUsage.objects.bulk_create(
        [MemberCreditUsage(workspace_id=workspace_id, user_id=user_id, month=month)],
        ignore_conflicts=True,
    )
    if not counters.update(used=F("used") + amount):
        raise _OverLimit


def _uncount(hold: CreditEntry, delta: int) -> None:
    """Move the hold's member usage by ``delta`` (the release or the settle's correction)."""
    if hold.actor_id is None or delta == 0:
        return
    counters = MemberCreditUsage.objects.filter(
        workspace_id=hold.workspace_id, user_id=hold.actor_id, month=_month_of(hold.created_at)
    )
    # Greatest: a hold written before usage was counted must not drive the counter negative.
    counters.update(used=Greatest(F("used") + delta, Value(0)))


def _limit_refusal(
    *, workspace: Workspace, user_id: int, month: datetime.date, amount: int, limit: MemberLimit
) -> MemberCreditLimitError:
    used = (
        MemberCreditUsage.objects.filter(workspace_id=workspace.pk, user_id=user_id, month=month)
        .values_list("used", flat=True)
        .first()
    ) or 0
    return MemberCreditLimitError(
        limit=limit.monthly_limit or 0, used=used, needed=amount, source=limit.source
    )


def _user_label(user) -> str:
    return getattr(user, "email", "") or str(user)


def credits_member_limit_set(
    *,
    workspace: Workspace,
    member,
    monthly_limit: int | None,
    use_default: bool = False,
    actor=None,
    actor_label: str = "",
) -> MemberCreditLimit | None:
    """Set a member's monthly credit limit (None: no limit), or with ``use_default`` go back
    to the workspace default; return the member's own limit row, if any."""
    if not Membership.objects.filter(workspace=workspace, user=member).exists():
        raise CreditsError(f"{_user_label(member)} is not a member of {workspace.slug}.")
    if monthly_limit is not None:
        _require_amount(monthly_limit, allow_zero=True)
    with transaction.atomic():
        if use_default:
            MemberCreditLimit.objects.filter(workspace=workspace, user=member).delete()
            row = None
            description = f"{_user_label(member)}: limit reset to the workspace default"
        else:
            row, _created = MemberCreditLimit.objects.update_or_create(
                workspace=workspace,
                user=member,
                defaults={"monthly_limit": monthly_limit, "updated_by": actor},
            )
            shown = "no limit" if monthly_limit is None else f"{monthly_limit:,} credits a month"
            description = f"{_user_label(member)}: limit set to {shown}"
        CreditLimitEvent.objects.create(
            workspace=workspace,
            member=member,
            actor=actor,
            actor_label=actor_label or (_user_label(actor) if actor else ""),
            description=description,
        )
    logger.info("credits member limit: workspace=%s %s", workspace.slug, description)
    return row


def credits_member_limit_default_set(
    *, workspace: Workspace, default: str, actor=None, actor_label: str = ""
) -> None:
    """Set the limit of members without their own: none, or an equal share of the allowance."""
    if default not in MemberLimitDefault.values:
        raise ValueError(f"The default member limit is one of {', '.join(MemberLimitDefault)}.")
    with transaction.atomic():
        _ensure_account(workspace.pk)
        CreditAccount.objects.filter(workspace_id=workspace.pk).update(member_limit_default=default)
        CreditLimitEvent.objects.create(
            workspace=workspace,
            actor=actor,
            actor_label=actor_label or (_user_label(actor) if actor else ""),
            description=f"Default member limit set to: {MemberLimitDefault(default).label}",
        )


# --- holds -------------------------------------------------------------------------------


def credits_hold(
    *, workspace: Workspace, amount: int, idempotency_key: str, user=None
) -> CreditEntry:
    """Set aside the most a request can cost, or raise InsufficientCreditsError (balance) or
    MemberCreditLimitError (the user's monthly limit)."""
    _require_amount(amount)
    key = _require_key(idempotency_key)
    user_id = getattr(user, "pk", None)
    limit = member_limit_for(workspace_id=workspace.pk, user_id=user_id) if user_id else None
    month = _month_of(timezone.now())
    try:
        with transaction.atomic():
            if user_id is not None:
                _count_against_limit(
                    workspace_id=workspace.pk,
                    user_id=user_id,
                    month=month,
                    amount=amount,
                    limit=limit.monthly_limit,
                )
            moved = _move_balance(workspace_id=workspace.pk, delta=-amount, require_cover=True)
            if moved is None:
                raise _NotCovered
            entry = CreditEntry.objects.create(
                workspace=workspace,
                kind=EntryKind.HOLD,
                amount=-amount,
                balance_after=moved[0],
                idempotency_key=key,
                actor_id=user_id,
            )
            return entry
    except IntegrityError:
        # The same key committed first: this transaction's debit was rolled back with it.
        existing = _existing(workspace.pk, key)
        if existing is None:
            raise
        return _replay(existing, kind=EntryKind.HOLD, amount=-amount)
    except (_NotCovered, _OverLimit) as exc:
        existing = _existing(workspace.pk, key)
        if existing is not None:
            return _replay(existing, kind=EntryKind.HOLD, amount=-amount)
        if isinstance(exc, _OverLimit):
            raise _limit_refusal(
                workspace=workspace, user_id=user_id, month=month, amount=amount, limit=limit
            ) from None
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
        # The request's usage arrived after its hold was given back (the stale-hold sweep
        # took it for dead): the platform absorbs it rather than charge a balance that never
        # held the credits for it. Logged so that support can see it.
        logger.warning(
            "credits settle after release: hold=%s usage=%s not charged", hold.pk, charged
        )
    return existing


def _require_hold(hold: CreditEntry) -> None:
    if hold.kind != EntryKind.HOLD or hold.pk is None:
        raise ValueError("Only a saved hold entry can be settled or released.")


def credits_settle(*, hold: CreditEntry, amount: int) -> CreditEntry:
    """Charge a request's real cost against its hold and give back the rest of the hold.

    Usage above the hold is taken from the balance as far as the balance covers it; the
    shortfall is recorded on the entry (``written_off``, shown to support in the admin), so
    the balance never goes below zero. A second call for the same hold returns the first
    result. Works inside a caller's transaction, e.g. one that also writes the usage row.
    """
    _require_hold(hold)
    _require_amount(amount, allow_zero=True)
    held = -hold.amount
    excess = amount - held
    try:
        with transaction.atomic():
            if excess <= 0:
                _uncount(hold, amount - held)
                moved = _move_balance(
                    workspace_id=hold.workspace_id, delta=held - amount, require_cover=False
                )
                collected, written_off = 0, 0
            else:
                # Rare: the input estimate was low. Lock the counter, then the account (the
                # order every path takes), to know what can be collected.
                if hold.actor_id is not None:
                    MemberCreditUsage.objects.select_for_update().filter(
                        workspace_id=hold.workspace_id,
                        user_id=hold.actor_id,
                        month=_month_of(hold.created_at),
                    ).exists()
                balance = (
                    CreditAccount.objects.select_for_update()
                    .values_list("balance", flat=True)
                    .get(workspace_id=hold.workspace_id)
                )
                collected = min(excess, balance)
                written_off = excess - collected
                _uncount(hold, collected)
                moved = _move_balance(
                    workspace_id=hold.workspace_id, delta=-collected, require_cover=True
                )
            if moved is None:
                raise CreditsError(f"Workspace {hold.workspace_id} has no credit account.")
            balance, state = moved
            entry = CreditEntry.objects.create(
                workspace_id=hold.workspace_id,
                kind=EntryKind.SETTLE,
                amount=held - amount if excess <= 0 else -collected,
                balance_after=balance,
                charged=amount if excess <= 0 else held + collected,
                written_off=written_off,
                idempotency_key=f"settle:{hold.pk}",
                hold=hold,
                actor_id=hold.actor_id,
            )
            if written_off:
                logger.warning(
                    "credits shortfall: hold=%s usage=%s written off=%s",
                    hold.pk,
                    amount,
                    written_off,
                )
            _alert_after_change(
                workspace_id=hold.workspace_id, balance=balance, state=state, credited=False
            )
            return entry
    except IntegrityError:
        return _close_replay(hold, kind=EntryKind.SETTLE, charged=amount)


def _release(hold: CreditEntry, *, reason: str) -> tuple[CreditEntry, bool]:
    held = -hold.amount
    try:
        with transaction.atomic():
            _uncount(hold, -held)
            moved = _move_balance(workspace_id=hold.workspace_id, delta=held, require_cover=False)
            if moved is None:
                raise CreditsError(f"Workspace {hold.workspace_id} has no credit account.")
            entry = CreditEntry.objects.create(
                workspace_id=hold.workspace_id,
                kind=EntryKind.RELEASE,
                amount=held,
                balance_after=moved[0],
                idempotency_key=f"release:{hold.pk}",
                hold=hold,
                reason=reason,
                actor_id=hold.actor_id,
            )
            return entry, True
    except IntegrityError:
        return _close_replay(hold, kind=EntryKind.RELEASE, charged=None), False


def credits_release(*, hold: CreditEntry, reason: str = "") -> CreditEntry:
    """Give a whole hold back (the request failed or was abandoned before any usage)."""
    _require_hold(hold)
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise ValueError("A reason is at most 500 characters.")
    entry, _released = _release(hold, reason=reason)
    return entry


def credits_release_stale_holds(
    *, older_than: datetime.timedelta, lookback: datetime.timedelta | None = None
) -> int:
    """Release every hold still open after ``older_than``; return how many were released now.

    A hold that old belongs to a request whose process died (no request lasts that long).
    Each release is an entry with a reason; a settle racing with it wins or loses on the one
    close per hold, so a hold is never closed twice and a repeat of the sweep does nothing.
    ``lookback`` bounds how far back past ``older_than`` it looks (None: the whole ledger), so
    the periodic run reads only recent holds (index ``credits_entry_hold_created_idx``).
    """
    cutoff = timezone.now() - older_than
    stale = CreditEntry.objects.filter(
        kind=EntryKind.HOLD, created_at__lt=cutoff, closes__isnull=True
    )
    if lookback is not None:
        stale = stale.filter(created_at__gte=cutoff - lookback)
    stale = stale.order_by("id").values_list("id", flat=True)
    released = 0
    for hold_id in list(stale[:10_000]):
        hold = CreditEntry.objects.get(pk=hold_id)
        _entry, now = _release(hold, reason=STALE_HOLD_REASON)
        if now:
            released += 1
            logger.warning(
                "credits stale hold released: workspace=%s hold=%s credits=%s",
                hold.workspace_id,
                hold.pk,
                -hold.amount,
            )
    return released


# --- the monthly allowance -------------------------------------------------------------


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
