"""Reads for the API tokens page and the admin."""

from django.db.models import QuerySet

from workspaces.models import Workspace

from .models import ApiToken, ApiTokenEvent


def api_tokens_list(*, workspace: Workspace, include_revoked: bool = True) -> QuerySet[ApiToken]:
    """Return the workspace's tokens, live ones first, newest first within each."""
    tokens = ApiToken.objects.filter(workspace=workspace).select_related("created_by", "revoked_by")
    if not include_revoked:
        tokens = tokens.filter(revoked_at__isnull=True)
    return tokens.order_by("revoked_at", "-created_at", "-id")


def api_token_events_recent(*, workspace: Workspace, limit: int = 20) -> list[ApiTokenEvent]:
    """Return the workspace's latest token events."""
    return list(ApiTokenEvent.objects.filter(workspace=workspace).select_related("actor")[:limit])
