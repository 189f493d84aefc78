"""Reads for the API tokens page and the admin."""

from django.db.models import Exists, OuterRef, QuerySet

from workspaces.models import Membership, Workspace

from .models import ApiToken, ApiTokenEvent


def api_tokens_list(*, workspace: Workspace, include_revoked: bool = True) -> QuerySet[ApiToken]:
    """Return the workspace's tokens, live ones first, newest first within each; each
    carries ``creator_is_admin``: whether its creator is still an admin of the workspace."""
    tokens = (
        ApiToken.objects.filter(workspace=workspace)
        .select_related("created_by", "revoked_by")
        .annotate(
            creator_is_admin=Exists(
                Membership.objects.filter(
                    workspace_id=OuterRef("workspace_id"),
                    user_id=OuterRef("created_by_id"),
                    role=Membership.Role.ADMIN,
                )
            )
        )
    )
    if not include_revoked:
        tokens = tokens.filter(revoked_at__isnull=True)
    return tokens.order_by("revoked_at", "-created_at", "-id")


def api_token_events_recent(*, workspace: Workspace, limit: int = 20) -> list[ApiTokenEvent]:
    """Return the workspace's latest token events."""
    return list(ApiTokenEvent.objects.filter(workspace=workspace).select_related("actor")[:limit])


def api_token_former_admin_creators(*, workspace: Workspace) -> list[tuple[str, int]]:
    """Return (e-mail, live tokens) for each creator of live tokens who is no longer an admin
    of the workspace (demoted, removed or deleted), most tokens first."""
    counts: dict[str, int] = {}
    for token in api_tokens_list(workspace=workspace, include_revoked=False):
        if token.created_by_email and not token.creator_is_admin:
            counts[token.created_by_email] = counts.get(token.created_by_email, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
