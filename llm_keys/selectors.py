from django.db import connection
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


# What a check reads: enough to decide whether it already ran, decrypt and record the verdict.
_CHECK_COLUMNS = (
    "id",
    "workspace_id",
    "provider",
    "ciphertext",
    "encryption_key_id",
    "hint",
    "status",
    "last_checked_at",
    "last_error",
)


def llm_key_get_for_check(llm_key_id: int) -> LLMKey | None:
    """Return a stored key with the columns a check needs (the others load on access).

    One fixed statement: the periodic sweep runs it once per key, and the ORM's compiled
    ``filter().first()`` cost several times more CPU than the query itself.
    """
    table = connection.ops.quote_name(LLMKey._meta.db_table)
    sql = f"SELECT {', '.join(_CHECK_COLUMNS)} FROM {table} WHERE id = %s"  # noqa: S608
    return next(iter(LLMKey.objects.raw(sql, [llm_key_id])), None)
