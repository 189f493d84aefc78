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
