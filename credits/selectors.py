import datetime
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from workspaces.models import Membership, Workspace

from .models import (
    AlertState,
    CreditAccount,
    MemberCreditLimit,
    MemberCreditUsage,
    MemberLimitDefault,
)
from .services import low_balance_threshold


def credits_balance(*, workspace: Workspace) -> int:
    """Return the workspace's spendable balance in credits (0 before its first grant)."""
    balance = (
        CreditAccount.objects.filter(workspace_id=workspace.pk)
        .values_list("balance", flat=True)
        .first()
    )
    return balance or 0


@dataclass(frozen=True, slots=True)
class CreditsAlertState:
    """The balance alert a workspace is in, as the admins were e-mailed about it."""

    state: str
    balance: int
    threshold: int
    percent: int
    allowance: int

    @property
    def active(self) -> bool:
        return self.state != AlertState.OK


def credits_alert_state(*, workspace: Workspace) -> CreditsAlertState:
    """Return the workspace's balance alert state (ok, low or empty) with its figures."""
    row = (
        CreditAccount.objects.filter(workspace_id=workspace.pk)
        .values_list("balance", "alert_state")
        .first()
    )
    balance, state = row or (0, AlertState.OK)
    return CreditsAlertState(
        state=state,
        balance=balance,
        threshold=low_balance_threshold(),
        percent=settings.AI_CREDITS_LOW_BALANCE_PERCENT,
        allowance=settings.AI_CREDITS_MONTHLY_ALLOWANCE,
    )


@dataclass(frozen=True, slots=True)
class MemberCreditsRow:
    """One member on the members page: role, this month's credits and the limit in force."""

    membership: Membership
    used: int
    limit: int | None
    limit_source: str  # "member", "workspace default" or "none"

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


def member_credits_rows(*, workspace: Workspace) -> list[MemberCreditsRow]:
    """Return every member with this month's credits used (holds included) and their limit."""
    month = timezone.now().astimezone(datetime.UTC).date().replace(day=1)
    memberships = list(
        Membership.objects.filter(workspace_id=workspace.pk)
        .select_related("user")
        .order_by("user__email")
    )
    used = dict(
        MemberCreditUsage.objects.filter(workspace_id=workspace.pk, month=month).values_list(
            "user_id", "used"
        )
    )
    own = dict(
        MemberCreditLimit.objects.filter(workspace_id=workspace.pk).values_list(
            "user_id", "monthly_limit"
        )
    )
    default = credits_member_limit_default(workspace=workspace)
    share = None
    if default == MemberLimitDefault.EQUAL_SHARE:
        allowance = settings.AI_CREDITS_MONTHLY_ALLOWANCE
        share = allowance // max(len(memberships), 1) if allowance > 0 else None
    rows = []
    for membership in memberships:
        if membership.user_id in own:
            limit, source = own[membership.user_id], "member"
        elif default == MemberLimitDefault.EQUAL_SHARE:
            limit, source = share, "workspace default"
        else:
            limit, source = None, "none"
        rows.append(
            MemberCreditsRow(
                membership=membership,
                used=used.get(membership.user_id, 0),
                limit=limit,
                limit_source=source,
            )
        )
    return rows


def credits_member_limit_default(*, workspace: Workspace) -> str:
    """Return the workspace's default member limit: none or equal_share."""
    return (
        CreditAccount.objects.filter(workspace_id=workspace.pk)
        .values_list("member_limit_default", flat=True)
        .first()
    ) or MemberLimitDefault.NONE
