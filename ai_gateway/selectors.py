from dataclasses import dataclass

from llm_keys.models import KeyStatus, LLMKey, Provider
from workspaces.models import Workspace

from .models import CredentialSource


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
