from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from config.db import select_instance
from workspaces.models import Workspace

from .models import KEY_USE_FIELDS, KeyEvent, LLMKey, Provider


def llm_key_get(*, workspace: Workspace, provider: str = Provider.ANTHROPIC) -> LLMKey | None:
    """Return the workspace's stored key for a provider, with who last changed it."""
    return (
        LLMKey.objects.select_related("updated_by", "created_by")
        .filter(workspace=workspace, provider=provider)
        .first()
    )


def key_events_recent(*, workspace: Workspace, limit: int = 20) -> QuerySet[KeyEvent]:
    """Return the latest audit events of a workspace's keys, newest first."""
    return KeyEvent.objects.select_related("actor").filter(workspace=workspace)[:limit]


# What a check reads: what a request uses, and what says whether the check already ran.
_CHECK_FIELDS = (*KEY_USE_FIELDS, "last_checked_at", "last_error")


def llm_key_get_for_check(llm_key_id: int) -> LLMKey | None:
    """Return a stored key with the columns a check needs (the others load on access).

    One fixed statement, prepared on PostgreSQL: the periodic sweep runs it once per key, and
    the ORM's ``filter().first()`` cost several times more CPU than the query itself.
    """
    return select_instance(LLMKey, _CHECK_FIELDS, "id = %s", [llm_key_id])


def llm_key_next_check_by(llm_key: LLMKey) -> datetime:
    """Return the latest time the periodic sweep will have checked this key again.

    The sweep runs every LLM_KEY_CHECK_INTERVAL_MINUTES from beat's start, so a key is
    checked again within one interval of its last check (or of when it was saved).
    """
    since = llm_key.last_checked_at or llm_key.updated_at or timezone.now()
    return since + timedelta(minutes=settings.LLM_KEY_CHECK_INTERVAL_MINUTES)
