"""Celery tasks for the AI gateway: thin wrappers around its services."""

from __future__ import annotations

import datetime

from celery import shared_task
from django.utils import timezone

from .usage_days import ai_usage_days_build


@shared_task(name="ai_gateway.tasks.ai_usage_days_build", ignore_result=True, acks_late=True)
def ai_usage_days_build_yesterday() -> int:
    """Sum every closed UTC day not yet built, through yesterday, for the usage page."""
    today = timezone.now().astimezone(datetime.UTC).date()
    return ai_usage_days_build(through=today - datetime.timedelta(days=1), today=today)
