from django.db.models import Count, QuerySet, Sum

from llm_keys.selectors import NextCredentials, credentials_next  # noqa: F401 - re-exported
from workspaces.models import Workspace

from .models import AIRequest, CredentialSource


def ai_requests_recent(*, workspace: Workspace, user=None) -> QuerySet[AIRequest]:
    """Return the workspace's AI requests, newest first; only one user's when given."""
    requests = AIRequest.objects.filter(workspace=workspace).select_related("user", "api_token")
    if user is not None:
        requests = requests.filter(user=user)
    return requests


def _totals(*, workspace: Workspace, user, group_by: str) -> list[dict]:
    return list(
        ai_requests_recent(workspace=workspace, user=user)
        .order_by()
        .values(group_by)
        .annotate(
            requests=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            credits=Sum("credits_charged"),
        )
        .order_by(group_by)
    )


def ai_usage_by_source(*, workspace: Workspace, user=None) -> list[dict]:
    """Return request counts, tokens and credits per credential source."""
    rows = _totals(workspace=workspace, user=user, group_by="credential_source")
    labels = dict(CredentialSource.choices)
    for row in rows:
        row["label"] = labels.get(row["credential_source"], row["credential_source"])
    return rows


def ai_usage_by_model(*, workspace: Workspace, user=None) -> list[dict]:
    """Return request counts, tokens and credits per model."""
    return _totals(workspace=workspace, user=user, group_by="model")
