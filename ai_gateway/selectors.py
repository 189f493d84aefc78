from dataclasses import dataclass

from django.db.models import Count, QuerySet, Sum

from llm_keys.models import KeyStatus, LLMKey, Provider
from workspaces.models import Workspace

from .models import AIRequest, CredentialSource


@dataclass(frozen=True, slots=True)
class NextCredentials:
    """What the workspace's next AI request will be paid with, for pages to show."""

    source: str  # byok / platform / none
    summary: str


def credentials_next(
    *, workspace: Workspace, provider: str = Provider.ANTHROPIC
) -> NextCredentials:
    """Return which credentials the workspace's next AI request will use (without decrypting)."""
    status = (
        LLMKey.objects.filter(workspace=workspace, provider=provider)
        .values_list("status", flat=True)
        .first()
    )
    if status is None:
        return NextCredentials(
            CredentialSource.PLATFORM, "AI credits (the platform's Anthropic account)."
        )
    if status == KeyStatus.INVALID:
        return NextCredentials(
            CredentialSource.NONE,
            "None: the workspace's Anthropic key is invalid, so AI requests are refused "
            "(they never fall back to AI credits).",
        )
    return NextCredentials(
        CredentialSource.BYOK, "The workspace's own Anthropic key; no AI credits are used."
    )


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
