from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from workspaces.models import Membership, Workspace

from .models import CredentialSource, KeyEvent, KeyStatus, LLMKey, Provider


def llm_key_get(*, workspace: Workspace, provider: str = Provider.ANTHROPIC) -> LLMKey | None:
    """Return the workspace's stored key for a provider, with who last changed it."""
    return (
        LLMKey.objects.select_related("updated_by", "created_by")
        .filter(workspace=workspace, provider=provider)
        .first()
    )


def key_events_recent(*, workspace: Workspace, limit: int = 20) -> QuerySet[KeyEvent]:
    """Return the latest audit events of a workspace's keys, newest first: changes and
    checks, not the Batches/Files calls made on them (support sees those in the admin)."""
    return (
        KeyEvent.objects.select_related("actor")
        .filter(workspace=workspace)
        .exclude(action=KeyEvent.Action.PASSED_THROUGH)[:limit]
    )


def llm_key_get_for_check(llm_key_id: int) -> LLMKey | None:
    """Return a stored key for a check, or None if it was removed meanwhile."""
    return LLMKey.objects.filter(pk=llm_key_id).first()


FOUND_BY = {
    "system (periodic check)": "the periodic check found it invalid",
    "system (AI request refused by Anthropic)": "Anthropic refused an AI request made with it",
}


def key_found_invalid_by(*, workspace_id: int, provider: str = Provider.ANTHROPIC) -> str:
    """Return what last found the workspace's key invalid, as the end of a sentence."""
    event = (
        KeyEvent.objects.filter(
            workspace_id=workspace_id, provider=provider, action=KeyEvent.Action.BECAME_INVALID
        )
        .select_related("actor")
        .order_by("-id")
        .first()
    )
    if event is None:
        return "a check found it invalid"
    if event.actor_id is not None:
        return f"a check by {event.actor_display} found it invalid"
    return FOUND_BY.get(event.actor_label, "a check found it invalid")


def workspace_admin_contacts(*, workspace: Workspace) -> list[str]:
    """Return the workspace's admins as "Name <e-mail>" (or the e-mail alone), for members
    to know whom to ask."""
    admins = (
        Membership.objects.filter(workspace=workspace, role=Membership.Role.ADMIN)
        .exclude(user__email="")
        .select_related("user")
        .order_by("user__email")
    )
    contacts = []
    for membership in admins:
        name = membership.user.get_full_name().strip()
        email = membership.user.email
        contacts.append(f"{name} <{email}>" if name else email)
    return contacts


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
    return credentials_next_for_status(status, provider=provider)


def credentials_next_for_status(
    status: str | None, *, provider: str = Provider.ANTHROPIC
) -> NextCredentials:
    """Return what a workspace whose ``provider`` key has this status (None: no key) pays
    its requests to that provider with."""
    name = Provider(provider).label
    if status is None:
        return NextCredentials(
            CredentialSource.PLATFORM, f"AI credits (the platform's {name} account)."
        )
    if status == KeyStatus.INVALID:
        return NextCredentials(
            CredentialSource.NONE,
            f"None: the workspace's {name} key is invalid, so AI requests are refused "
            "(they never fall back to AI credits).",
        )
    return NextCredentials(
        CredentialSource.BYOK, f"The workspace's own {name} key; no AI credits are used."
    )


def platform_key_setting(provider: str) -> str:
    """The setting holding the platform's key for ``provider`` (SPEC §18)."""
    return f"PLATFORM_{provider.upper()}_API_KEY"


def credentials_next_by_provider(*, workspace: Workspace) -> dict[str, NextCredentials]:
    """What the workspace's next request to each provider is paid with, in the order of
    ``Provider``, from one query; a provider with neither a workspace key nor a platform key
    (BYOK-only, no key saved) is left out."""
    statuses = dict(LLMKey.objects.filter(workspace=workspace).values_list("provider", "status"))
    return {
        provider: credentials_next_for_status(statuses.get(provider), provider=provider)
        for provider in Provider.values
        if provider in statuses or getattr(settings, platform_key_setting(provider), "")
    }


@dataclass(frozen=True, slots=True)
class KeyCard:
    """One provider's card on the LLM Key page: its stored key (or None) and when the
    periodic sweep will have checked that key again."""

    provider: str
    label: str
    llm_key: LLMKey | None
    next_check_by: datetime | None


def key_cards(*, workspace: Workspace) -> list[KeyCard]:
    """Return one card per provider, in the order of ``Provider``, from one query."""
    stored = {
        llm_key.provider: llm_key
        for llm_key in LLMKey.objects.select_related("updated_by", "created_by").filter(
            workspace=workspace
        )
    }
    return [
        KeyCard(
            provider=provider,
            label=label,
            llm_key=stored.get(provider),
            next_check_by=llm_key_next_check_by(stored[provider]) if provider in stored else None,
        )
        for provider, label in Provider.choices
    ]


def llm_key_next_check_by(llm_key: LLMKey) -> datetime:
    """Return the latest time the periodic sweep will have checked this key again.

    The sweep runs every LLM_KEY_CHECK_INTERVAL_MINUTES from beat's start, so a key is
    checked again within one interval of its last check (or of when it was saved).
    """
    since = llm_key.last_checked_at or llm_key.updated_at or timezone.now()
    by_sweep = since + timedelta(minutes=settings.LLM_KEY_CHECK_INTERVAL_MINUTES)
    # A key left unverified by an unreachable provider is re-checked within minutes (queued
    # on save, then the check's retries): the longest pause between two tries bounds it.
    if (
        llm_key.status == KeyStatus.UNVERIFIED
        and llm_key.last_error
        and settings.LLM_KEY_RECHECK_UNVERIFIED_AFTER_SECONDS > 0
    ):
        pause = max(
            settings.LLM_KEY_RECHECK_UNVERIFIED_AFTER_SECONDS,
            min(
                settings.LLM_KEY_CHECK_RETRY_BACKOFF_MAX_SECONDS,
                settings.CELERY_BROKER_VISIBILITY_TIMEOUT * 0.9,
            ),
        )
        by_retry = since + timedelta(seconds=pause)
        if by_retry > timezone.now():
            return min(by_retry, by_sweep)
    return by_sweep
