from django.db.models import QuerySet

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
