from django.db.models import QuerySet

from workspaces.models import Workspace

from .models import KeyEvent, LLMKey, Provider


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


def llm_key_get_for_check(llm_key_id: int) -> LLMKey | None:
    """Return a stored key for a check, or None if it was removed meanwhile."""
    return LLMKey.objects.filter(pk=llm_key_id).first()
