"""Celery tasks for AI credits: thin wrappers around ``credits.services``."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from .services import credits_monthly_allowance_grant_all

logger = logging.getLogger(__name__)


@shared_task(
    name="credits.tasks.credits_monthly_allowance_grant", ignore_result=True, acks_late=True
)
def credits_monthly_allowance_grant() -> int:
    """Grant every workspace this month's allowance (idempotent per workspace and month)."""
    month = timezone.now().date().replace(day=1)
    granted = credits_monthly_allowance_grant_all(month=month)
    logger.info("Granted the %s allowance to %d workspaces.", month.strftime("%Y-%m"), granted)
    return granted
