"""Celery tasks for AI credits: thin wrappers around ``credits.services``."""

from __future__ import annotations

import datetime
import logging
import smtplib

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import services

logger = logging.getLogger(__name__)


@shared_task(
    name="credits.tasks.credits_monthly_allowance_grant", ignore_result=True, acks_late=True
)
def credits_monthly_allowance_grant() -> int:
    """Grant every workspace this month's allowance (idempotent per workspace and month)."""
    month = timezone.now().date().replace(day=1)
    granted = services.credits_monthly_allowance_grant_all(month=month)
    logger.info("Granted the %s allowance to %d workspaces.", month.strftime("%Y-%m"), granted)
    return granted


@shared_task(name="credits.tasks.credits_release_stale_holds", ignore_result=True, acks_late=True)
def credits_release_stale_holds() -> int:
    """Charge reservations whose lease expired (their process died) their whole hold."""
    charged = services.credits_release_stale_holds(
        older_than=datetime.timedelta(seconds=settings.AI_HOLD_MAX_AGE_SECONDS)
    )
    if charged:
        logger.warning("Charged %d stale credit reservations whole: their process died.", charged)
    return charged


@shared_task(
    bind=True,
    name="credits.tasks.credits_alert_email",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=900,
    retry_jitter=True,
    max_retries=8,
)
def credits_alert_email(self, alert_id: int) -> bool:
    """E-mail the workspace admins about one balance alert (once, whatever the retries)."""
    return services.credits_alert_email_send(alert_id=alert_id)
