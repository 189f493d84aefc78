"""Member credit limits: a monthly limit per member, counted by ``MemberCreditUsage`` rows
that holds, extensions, settles and releases move (SPEC §14)."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Subquery, Value
from django.db.models.functions import Greatest

from workspaces.models import Membership, Workspace

from ..exceptions import CreditsError, MemberCreditLimitError
from ..models import (
    CreditAccount,
    CreditLimitEvent,
    MemberCreditLimit,
    MemberCreditUsage,
    MemberLimitDefault,
)
from .ledger import ensure_account, require_amount

logger = logging.getLogger("credits.services")


class OverLimit(Exception):
    """Internal: the member's monthly limit could not cover a hold."""


def month_of(moment: datetime.datetime) -> datetime.date:
    return moment.astimezone(datetime.UTC).date().replace(day=1)


@dataclass(frozen=True, slots=True)
class MemberLimit:
    """A member's monthly limit (None: no limit) and where it comes from."""

    monthly_limit: int | None
    source: str  # "member", "workspace default" or "none"


def member_limit_for(*, workspace_id: int, user_id: int) -> MemberLimit:
    """Return the monthly credit limit that applies to this member now."""
    # One query for the member's own limit and the workspace default (the account row).
    own = MemberCreditLimit.objects.filter(workspace_id=workspace_id, user_id=user_id)
    row = (
        CreditAccount.objects.filter(workspace_id=workspace_id)
        .annotate(has_own=Exists(own), own=Subquery(own.values("monthly_limit")[:1]))
        .values_list("member_limit_default", "has_own", "own")
        .first()
    )
    if row is None:  # no account yet: only the member's own limit can apply
        limit = own.first()
        return MemberLimit(limit.monthly_limit, "member") if limit else MemberLimit(None, "none")
    default, has_own, own_limit = row
    if has_own:
        return MemberLimit(own_limit, "member")
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


def count_against_limit(
    *, workspace_id: int, user_id: int, month: datetime.date, amount: int, limit: int | None
) -> None:
    """Add ``amount`` to the member's monthly usage; raise OverLimit past ``limit``.

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
        raise OverLimit


def uncount(hold, delta: int) -> None:
    """Move the hold's member usage by ``delta`` (the release or the settle's correction)."""
    if hold.actor_id is None or delta == 0:
        return
    counters = MemberCreditUsage.objects.filter(
        workspace_id=hold.workspace_id, user_id=hold.actor_id, month=month_of(hold.created_at)
    )
    # Greatest: a hold written before usage was counted must not drive the counter negative.
    counters.update(used=Greatest(F("used") + delta, Value(0)))


def limit_refusal(
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
        require_amount(monthly_limit, allow_zero=True)
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
        ensure_account(workspace.pk)
        CreditAccount.objects.filter(workspace_id=workspace.pk).update(member_limit_default=default)
        CreditLimitEvent.objects.create(
            workspace=workspace,
            actor=actor,
            actor_label=actor_label or (_user_label(actor) if actor else ""),
            description=f"Default member limit set to: {MemberLimitDefault(default).label}",
        )
