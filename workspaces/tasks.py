"""Celery tasks for workspaces and sessions."""

from __future__ import annotations

from importlib import import_module

from celery import shared_task
from django.conf import settings


@shared_task(name="workspaces.tasks.sessions_clear_expired", ignore_result=True)
def sessions_clear_expired() -> None:
    """Delete expired sessions, as Django's ``clearsessions`` command does: the database
    backend never deletes a session that simply runs out."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
