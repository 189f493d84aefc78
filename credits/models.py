"""The AI credits ledger: an append-only list of entries and one balance row per workspace.

Invariants (each enforced by the database, not only by Python):
- ``CreditAccount.balance >= 0`` (``credits_account_balance_non_negative``): no operation, at
  any concurrency, can spend credits a workspace does not have.
- ``CreditEntry`` rows are never updated or deleted: a trigger refuses UPDATE and DELETE on
  PostgreSQL, and UPDATE on SQLite (migration 0002). Corrections are new entries.
- ``amount`` is the signed change the entry made to the balance, so for every workspace
  ``CreditAccount.balance == sum(CreditEntry.amount)``; services write the entry and the
  balance in the same transaction and store the resulting ``balance_after``.
- ``(workspace, idempotency_key)`` is unique (``credits_entry_unique_idempotency_key``): a
  repeated operation cannot be applied twice.
- A hold is settled at most once and released at most once
  (``credits_entry_one_settle_one_release_per_hold``). A reservation whose lease expired (its
  process died) is settled by the sweep for its whole ``held``; a settle after a release is
  the late charge of a request released before that rule (docs/decisions/107).
- Every hold has one ``CreditReservation``: the mutable state the append-only entries cannot
  carry (credits set aside now, lease, open or closed). ``CreditAccount.open_reservations``
  counts a workspace's open ones, moved in the same UPDATE as the balance.
- Signs by kind (``credits_entry_amount_sign``): grant and refund add, hold takes,
  release gives back, settle gives back the unused part of its hold (or takes the excess),
  adjustment is any non-zero change.
- A member's monthly usage (``MemberCreditUsage.used``) never goes below zero
  (``credits_member_usage_non_negative``); a hold with a user counts against it, its release
  gives it back and its settle leaves the real charge counted. A hold is refused when it would
  take ``used`` above the member's limit, by one conditional UPDATE of the counter row.
- ``CreditAccount.alert_state`` only moves to a worse state (ok → low → empty) by one
  conditional UPDATE, which one transaction wins, and back to ok when credits are added above
  the threshold; each move to a worse state writes one ``CreditAlert``, e-mailed once.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class EntryKind(models.TextChoices):
    GRANT = "grant", "Grant"
    HOLD = "hold", "Hold"
    EXTEND = "extend", "Hold extended"
    SETTLE = "settle", "Usage (settled hold)"
    RELEASE = "release", "Release"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"


class AlertState(models.TextChoices):
    OK = "ok", "OK"
    LOW = "low", "Low balance"
    EMPTY = "empty", "No credits left"


# The entries that belong to a hold: its extensions, its settle, its release.
HOLD_LINKED_KINDS = [EntryKind.EXTEND, EntryKind.SETTLE, EntryKind.RELEASE]


class ReservationState(models.TextChoices):
    OPEN = "open", "In progress"
    SETTLED = "settled", "Settled"
    RELEASED = "released", "Released"
    # Closed by the sweep: its process died before it ended the request, so the usage was never
    # seen and the whole reservation is charged (docs/decisions/107).
    EXPIRED = "expired", "Charged: its process died"


# How bad each state is: an alert is sent only when the state gets worse.
ALERT_RANK = {AlertState.OK: 0, AlertState.LOW: 1, AlertState.EMPTY: 2}


class MemberLimitDefault(models.TextChoices):
    NONE = "none", "No limit"
    EQUAL_SHARE = "equal_share", "Equal share of the monthly allowance"


class CreditAccount(models.Model):
    workspace = models.OneToOneField(
        "workspaces.Workspace",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="credit_account",
    )
    balance = models.BigIntegerField(default=0)
    alert_state = models.CharField(
        max_length=8,
        choices=AlertState.choices,
        default=AlertState.OK,
        help_text="The last balance alert sent; back to ok once credits are added again.",
    )
    member_limit_default = models.CharField(
        max_length=12,
        choices=MemberLimitDefault.choices,
        default=MemberLimitDefault.NONE,
        help_text="The monthly limit of a member who has no limit of their own.",
    )
    open_reservations = models.IntegerField(
        default=0, help_text="Credit-paid requests of the workspace in progress now."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0), name="credits_account_balance_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(open_reservations__gte=0),
                name="credits_account_open_reservations_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(alert_state__in=AlertState.values),
                name="credits_account_alert_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(member_limit_default__in=MemberLimitDefault.values),
                name="credits_account_member_limit_default_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id}: {self.balance:,} credits"


class ReturnedBigIntegerField(models.BigIntegerField):
    """A whole number the database returns from the INSERT that writes it (its value may be
    an expression, such as the account's balance read in the same statement)."""

    db_returning = True


class CreditEntry(models.Model):
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.PROTECT, related_name="credit_entries"
    )
    kind = models.CharField(max_length=12, choices=EntryKind.choices)
    amount = models.BigIntegerField(help_text="Signed change to the balance, in credits.")
    # Written as the account's balance in the INSERT itself and returned by it: the ledger
    # reads no balance back after moving it (docs/decisions/108).
    balance_after = ReturnedBigIntegerField()
    charged = models.BigIntegerField(
        default=0, help_text="Settle only: the credits the request used and was charged."
    )
    written_off = models.BigIntegerField(
        default=0,
        help_text="Settle only: usage above the hold that the balance could not cover.",
    )
    idempotency_key = models.CharField(max_length=200)
    hold = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="closes",
        help_text="Settle and release: the hold they close.",
    )
    settlement = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refunds",
        help_text="Refund only: the settled usage it gives back.",
    )
    reason = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "credit entries"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                name="credits_entry_unique_idempotency_key",
            ),
            models.UniqueConstraint(
                fields=["hold", "kind"],
                condition=Q(kind__in=["settle", "release"]),
                name="credits_entry_one_settle_one_release_per_hold",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=EntryKind.values), name="credits_entry_kind_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=[EntryKind.GRANT, EntryKind.REFUND], amount__gt=0)
                    | Q(kind__in=[EntryKind.HOLD, EntryKind.EXTEND], amount__lt=0)
                    | Q(kind=EntryKind.RELEASE, amount__gte=0)
                    | Q(kind=EntryKind.SETTLE)
                    | (Q(kind=EntryKind.ADJUSTMENT) & ~Q(amount=0))
                ),
                name="credits_entry_amount_sign",
            ),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="credits_entry_balance_after_non_negative"
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=HOLD_LINKED_KINDS, hold__isnull=False)
                    | (~Q(kind__in=HOLD_LINKED_KINDS) & Q(hold__isnull=True))
                ),
                name="credits_entry_hold_link",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind=EntryKind.REFUND, settlement__isnull=False)
                    | (~Q(kind=EntryKind.REFUND) & Q(settlement__isnull=True))
                ),
                name="credits_entry_refund_link",
            ),
            models.CheckConstraint(
                condition=(
                    ~Q(kind__in=[EntryKind.GRANT, EntryKind.REFUND, EntryKind.ADJUSTMENT])
                    | ~Q(reason="")
                ),
                name="credits_entry_reason_required",
            ),
            models.CheckConstraint(
                condition=Q(charged__gte=0, written_off__gte=0),
                name="credits_entry_charged_non_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-id"], name="credits_entry_ws_newest_idx"),
            # The stale-hold sweep's range scan (credits_release_stale_holds).
            models.Index(
                fields=["created_at"],
                condition=Q(kind=EntryKind.HOLD),
                name="credits_entry_hold_created_idx",
            ),
            # The usage page's ledger: the lines (every entry but the settles and releases
            # folded into their hold) of one workspace in a period, newest first.
            models.Index(
                fields=["workspace", "-created_at", "-id"],
                condition=~Q(kind__in=["settle", "release", "extend"]),
                name="credits_entry_ws_line_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount:+,} ({self.workspace_id})"

    @property
    def held(self) -> int:
        """Hold only: the credits this hold set aside."""
        return -self.amount if self.kind == EntryKind.HOLD else 0


class MemberCreditLimit(models.Model):
    """A member's own monthly credit limit; ``monthly_limit`` None means "no limit" for this
    member whatever the workspace default. No row: the workspace default applies."""

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="member_credit_limits"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credit_limits"
    )
    monthly_limit = models.BigIntegerField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user"], name="credits_member_limit_unique"
            ),
            models.CheckConstraint(
                condition=Q(monthly_limit__isnull=True) | Q(monthly_limit__gte=0),
                name="credits_member_limit_non_negative",
            ),
        ]

    def __str__(self) -> str:
        limit = "no limit" if self.monthly_limit is None else f"{self.monthly_limit:,} credits"
        return f"{self.user_id} in {self.workspace_id}: {limit}"


class MemberCreditUsage(models.Model):
    """Credits a member's requests used in one calendar month (UTC), open holds included."""

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="member_credit_usage"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credit_usage"
    )
    month = models.DateField(help_text="The first day of the month.")
    used = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user", "month"], name="credits_member_usage_unique"
            ),
            models.CheckConstraint(
                condition=Q(used__gte=0), name="credits_member_usage_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.workspace_id}, {self.month:%Y-%m}: {self.used:,}"


class CreditLimitEvent(models.Model):
    """Audit trail of member limit changes (append-only by convention: services only add)."""

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="credit_limit_events"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    description = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-id"], name="credits_limit_event_ws_idx")]

    def __str__(self) -> str:
        return self.description


class CreditAlert(models.Model):
    """One balance alert: the balance crossed into ``state``; ``emailed_at`` once sent."""

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="credit_alerts"
    )
    state = models.CharField(max_length=8, choices=AlertState.choices)
    balance = models.BigIntegerField()
    threshold = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[AlertState.LOW, AlertState.EMPTY]),
                name="credits_alert_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_state_display()} ({self.workspace_id}, {self.balance:,} credits)"


class CreditReservation(models.Model):
    """The live side of a hold: what the request has set aside now and whether its process is
    alive (RFC 4006's reserve / update / terminate). The ledger entries stay append-only; this
    row is updated while the request runs and closed once.

    - ``held`` is the hold plus its extensions while open (the credits set aside now);
    - the serving process renews ``renewed_at`` while the request runs; the sweep charges an
      open reservation not renewed for ``AI_HOLD_MAX_AGE_SECONDS`` its whole ``held`` (its
      process died; the usage was never seen), state ``expired`` (docs/decisions/107);
    - ``context`` is what the caller stored to account for the request should its process
      die (the AI gateway's usage row); credits never reads it;
    - a reservation leaves ``open`` once, to ``settled``, ``released`` or ``expired``
      (``credits_reservation_closed_when_not_open``).
    """

    hold = models.OneToOneField(
        CreditEntry, primary_key=True, on_delete=models.PROTECT, related_name="reservation"
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    held = models.BigIntegerField(help_text="Credits set aside now: the hold and its extensions.")
    extensions = models.PositiveIntegerField(default=0)
    state = models.CharField(
        max_length=8, choices=ReservationState.choices, default=ReservationState.OPEN
    )
    renewed_at = models.DateTimeField(help_text="The serving process's last sign of life.")
    closed_at = models.DateTimeField(null=True, blank=True)
    context = models.JSONField(
        null=True,
        blank=True,
        help_text="The caller's: what it needs to account for the request if its process dies.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(held__gte=0), name="credits_reservation_held_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(state__in=ReservationState.values),
                name="credits_reservation_state_valid",
            ),
            models.CheckConstraint(
                condition=(
                    Q(state=ReservationState.OPEN, closed_at__isnull=True)
                    | (~Q(state=ReservationState.OPEN) & Q(closed_at__isnull=False))
                ),
                name="credits_reservation_closed_when_not_open",
            ),
        ]
        indexes = [
            # The sweep: open reservations by last renewal (few rows: only those running).
            models.Index(
                fields=["renewed_at"],
                condition=Q(state="open"),
                name="credits_reservation_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hold_id}: {self.held:,} credits, {self.state}"
