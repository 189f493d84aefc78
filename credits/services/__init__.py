"""Writes to the credits ledger, by concern:

- ``ledger``: ``ledger_post``, the one helper that writes an entry and moves a balance (lock
  order, idempotency, the balance update); everything below is a short caller of it;
- ``reservations``: an AI request's hold, extensions, lease, settle and release, and the
  sweep of reservations whose process died;
- ``grants``: grants, adjustments, refunds and the monthly allowance;
- ``limits``: member credit limits; ``alerts``: balance alerts and their e-mail.

See ``credits.models`` for the invariants the database keeps.
"""

from ..exceptions import (
    ConcurrencyLimitError,
    CreditsError,
    HoldAlreadyClosedError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    MemberCreditLimitError,
    ReservationExpiredError,
)
from .alerts import alert_state_for, credits_alert_email_send, low_balance_threshold
from .grants import (
    credits_adjust,
    credits_grant,
    credits_monthly_allowance_grant,
    credits_monthly_allowance_grant_all,
    credits_refund,
)
from .ledger import MAX_AMOUNT, MAX_IDEMPOTENCY_KEY_LENGTH, ledger_post
from .limits import (
    MemberLimit,
    credits_member_limit_default_set,
    credits_member_limit_set,
    equal_share,
    member_limit_for,
)
from .reservations import (
    MEMBER_LIMIT,
    STALE_HOLD_REASON,
    ExpiredReservation,
    Extension,
    credits_extend,
    credits_extend_checked,
    credits_hold,
    credits_release,
    credits_release_stale_holds,
    credits_reservations_charge_expired,
    credits_reservations_renew,
    credits_settle,
)

__all__ = [
    "MAX_AMOUNT",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MEMBER_LIMIT",
    "STALE_HOLD_REASON",
    "ConcurrencyLimitError",
    "CreditsError",
    "ExpiredReservation",
    "Extension",
    "HoldAlreadyClosedError",
    "IdempotencyConflictError",
    "InsufficientCreditsError",
    "MemberCreditLimitError",
    "MemberLimit",
    "ReservationExpiredError",
    "alert_state_for",
    "credits_adjust",
    "credits_alert_email_send",
    "credits_extend",
    "credits_extend_checked",
    "credits_grant",
    "credits_hold",
    "credits_member_limit_default_set",
    "credits_member_limit_set",
    "credits_monthly_allowance_grant",
    "credits_monthly_allowance_grant_all",
    "credits_refund",
    "credits_release",
    "credits_release_stale_holds",
    "credits_reservations_charge_expired",
    "credits_reservations_renew",
    "credits_settle",
    "equal_share",
    "ledger_post",
    "low_balance_threshold",
    "member_limit_for",
]
