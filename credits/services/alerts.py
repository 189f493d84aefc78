"""Balance alerts: a workspace's alert state moves with its balance; admins are e-mailed once
per crossing (SPEC §14)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from workspaces.models import Membership

from ..models import ALERT_RANK, AlertState, CreditAccount, CreditAlert

logger = logging.getLogger("credits.services")


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


def alert_after_change(*, workspace_id: int, balance: int, credited: bool) -> None:
    """Move the workspace's alert state after a balance change in this transaction.

    A debit can only make the state worse (ok → low → empty): the first transaction whose
    conditional UPDATE moves it writes the alert and, on commit, enqueues its e-mail. Credits
    *added* (grant, refund, positive adjustment) bring it back to ok when they lift the
    balance to the threshold; a release or a settle giving back an unused hold does not, so a
    balance hovering at the threshold does not e-mail on every request. The state is not
    read first: a debit that leaves the balance above the threshold (nearly every one)
    costs no statement, the others one conditional UPDATE.
    """
    target = alert_state_for(balance)
    if target == AlertState.OK:
        if credited:
            CreditAccount.objects.filter(workspace_id=workspace_id).exclude(
                alert_state=AlertState.OK
            ).update(alert_state=AlertState.OK)
        return
    if credited:
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
        from ..tasks import credits_alert_email

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
