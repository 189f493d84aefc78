"""Writes for workspace provider keys. The settings page, the admin, the management commands,
the Celery tasks and the AI gateway all go through these functions."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from providers import CheckOutcome, CheckResult, get_adapter
from providers.keys import KEY_CHARACTERS, other_provider, shape_for
from workspaces.formatting import format_datetime
from workspaces.models import Membership, Workspace
from workspaces.services import Actor

from .crypto import DecryptionError, EncryptedValue, KeyRingError, get_key_ring
from .models import KeyEvent, KeyStatus, LLMKey, Provider, associated_data_for
from .selectors import key_found_invalid_by

logger = logging.getLogger(__name__)


class KeyFormatError(ValueError):
    """The value is not shaped like the provider's API key; no provider was asked."""


class KeyNotSavedError(Exception):
    """The provider refused the key; it was not saved."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class KeyUnreadableError(Exception):
    """A stored key cannot be decrypted with the configured key ring."""


@sensitive_variables("raw_key", "key")
def validate_key_format(raw_key: str, provider: str = Provider.ANTHROPIC) -> str:
    """Return the key with surrounding white space stripped, or raise KeyFormatError.

    No provider is asked, and no message repeats the value.
    """
    shape = shape_for(provider)
    label, a = shape.label, f"{shape.article} {shape.label}"
    key = (raw_key or "").strip()
    if not key:
        raise KeyFormatError(f"Enter your {label} API key.")
    other = other_provider(key, provider)
    if other is not None:
        raise KeyFormatError(
            f"That looks like {other.article} {other.label} key, not {a} key: choose "
            f"{other.label} as the provider, or paste your {label} key ({label} keys start "
            f"with '{shape.prefix}')."
        )
    if not key.startswith(shape.prefix):
        raise KeyFormatError(
            f"That is not {a} API key: {label} keys start with '{shape.prefix}'. "
            f"Copy the key from {shape.where}."
        )
    if not KEY_CHARACTERS.fullmatch(key):
        raise KeyFormatError(
            f"The key contains characters {a} key never has (spaces, quotes, line "
            f"breaks or punctuation). Paste the key again exactly as {shape.console} shows it."
        )
    exactly = (
        f" {label} keys have {shape.min_length} characters."
        if shape.min_length == shape.max_length
        else ""
    )
    if len(key) < shape.min_length:
        raise KeyFormatError(
            f"The key is too short to be {a} API key ({len(key)} characters).{exactly} "
            "Paste the whole key."
        )
    if len(key) > shape.max_length:
        raise KeyFormatError(
            f"The key is too long to be {a} API key ({len(key)} characters).{exactly} "
            "Paste just the one key."
        )
    return key


def _event(
    *, workspace_id: int, provider: str, action: str, actor: Actor, hint: str = "", detail: str = ""
) -> KeyEvent:
    return KeyEvent.objects.create(
        workspace_id=workspace_id,
        provider=provider,
        action=action,
        actor=actor.user,
        actor_label=actor.label,
        hint=hint,
        detail=detail[:300],
    )


def llm_key_passthrough_audit(
    *, llm_key: LLMKey, token, call: str, status: int, request_id: str
) -> KeyEvent:
    """Record a Message Batches or Files call an API token sent on the workspace's own key:
    the token (name and prefix, never the token), the method and path, the answer's status
    and request id; never a body or a key (decision 125)."""
    logger.info(
        "%s on workspace %s's own %s key by API token %s answered %s (request-id %s)",
        call,
        llm_key.workspace_id,
        llm_key.provider,
        token.prefix,
        status,
        request_id,
    )
    return _event(
        workspace_id=llm_key.workspace_id,
        provider=llm_key.provider,
        action=KeyEvent.Action.PASSED_THROUGH,
        actor=Actor(label=f"API token {token.name[:70]} ({token.prefix})"),
        hint=llm_key.hint,
        detail=f"{call[:200]} → {status} (request-id {request_id})",
    )


@sensitive_variables("raw_key", "key")
def llm_key_set(
    *,
    workspace: Workspace,
    provider: str = Provider.ANTHROPIC,
    raw_key: str,
    actor: Actor,
    check: bool = True,
) -> LLMKey:
    """Validate and store a workspace's key, replacing any key it had.

    A key the provider refuses is not saved (KeyNotSavedError) and a key already in place
    stays. When the provider cannot be reached the key is saved as ``unverified``.
    """
    key = validate_key_format(raw_key, provider)
    hint = key[-4:]
    result: CheckResult | None = get_adapter(provider).validate(key) if check else None
    if result is not None and result.outcome == CheckOutcome.INVALID:
        _event(
            workspace_id=workspace.pk,
            provider=provider,
            action=KeyEvent.Action.REJECTED,
            actor=actor,
            hint=hint,
            detail=result.reason,
        )
        raise KeyNotSavedError(result.reason)

    now = timezone.now()
    sealed = get_key_ring().encrypt(key, associated_data_for(workspace.pk, provider))
    fields = {
        "ciphertext": sealed.ciphertext,
        "encryption_key_id": sealed.key_id,
        "hint": hint,
        "updated_by": actor.user,
        "last_error": "",
        "last_checked_at": now if result is not None else None,
    }
    fields["last_verified_at"] = now if result and result.outcome == CheckOutcome.VALID else None
    if result is None:
        fields.update(status=KeyStatus.UNVERIFIED, status_reason="Saved without a check.")
        detail = "saved without a check"
    elif result.outcome == CheckOutcome.VALID:
        fields.update(status=KeyStatus.VALID, status_reason=result.reason)
        detail = f"verified with {shape_for(provider).label}"
    else:
        fields.update(
            status=KeyStatus.UNVERIFIED,
            status_reason=f"Not verified yet: {shape_for(provider).label} could not be "
            "reached. It will be checked again automatically within a few minutes.",
            last_error=result.reason,
        )
        detail = f"saved unverified ({result.reason})"

    with transaction.atomic():
        llm_key, created = LLMKey.objects.update_or_create(
            workspace=workspace,
            provider=provider,
            defaults=fields,
            create_defaults={**fields, "created_by": actor.user},
        )
        _event(
            workspace_id=workspace.pk,
            provider=provider,
            action=KeyEvent.Action.SET if created else KeyEvent.Action.REPLACED,
            actor=actor,
            hint=hint,
            detail=detail,
        )
        if result is not None and result.outcome == CheckOutcome.UNKNOWN:
            llm_key_id, requested_at = llm_key.pk, now.isoformat()
            transaction.on_commit(lambda: _enqueue_recheck(llm_key_id, requested_at))
    return llm_key


def _enqueue_recheck(llm_key_id: int, requested_at: str) -> None:
    """Check a key saved unverified again within minutes; the task's retries back off."""
    delay = settings.LLM_KEY_RECHECK_UNVERIFIED_AFTER_SECONDS
    if delay <= 0:
        return
    from .tasks import llm_key_check_task

    try:
        llm_key_check_task.apply_async(
            args=(llm_key_id,), kwargs={"requested_at": requested_at}, countdown=delay
        )
    except Exception:  # broker down: the periodic sweep still checks it
        logger.warning("Could not queue the re-check of key %s.", llm_key_id, exc_info=True)


def llm_key_remove(
    *, workspace: Workspace, provider: str = Provider.ANTHROPIC, actor: Actor
) -> bool:
    """Delete the workspace's key; its AI requests go back to AI credits. False if none."""
    with transaction.atomic():
        llm_key = (
            LLMKey.objects.select_for_update()
            .filter(workspace=workspace, provider=provider)
            .first()
        )
        if llm_key is None:
            return False
        hint = llm_key.hint
        llm_key.delete()
        _event(
            workspace_id=workspace.pk,
            provider=provider,
            action=KeyEvent.Action.REMOVED,
            actor=actor,
            hint=hint,
            detail="AI requests use AI credits again",
        )
    return True


@sensitive_variables("plaintext")
def llm_key_decrypt(llm_key: LLMKey) -> str:
    """Return the plaintext of a stored key, or raise KeyUnreadableError (failing closed)."""
    try:
        plaintext = get_key_ring().decrypt(
            EncryptedValue(llm_key.encryption_key_id, bytes(llm_key.ciphertext)),
            llm_key.associated_data,
        )
    except (DecryptionError, KeyRingError) as exc:
        logger.error(
            "Stored %s key of workspace %s cannot be decrypted: %s",
            llm_key.provider,
            llm_key.workspace_id,
            exc,
        )
        raise KeyUnreadableError(str(exc)) from None
    return plaintext


@sensitive_variables("plaintext")
def llm_key_check(*, llm_key: LLMKey, actor: Actor) -> CheckResult:
    """Ask the provider whether the stored key works, and record the verdict.

    An undecryptable key raises KeyUnreadableError and keeps its status: a broken ring is
    an operator's problem, not proof that the workspace's key is bad.
    """
    try:
        plaintext = llm_key_decrypt(llm_key)
    except KeyUnreadableError as exc:
        _event(
            workspace_id=llm_key.workspace_id,
            provider=llm_key.provider,
            action=KeyEvent.Action.DECRYPT_FAILED,
            actor=actor,
            hint=llm_key.hint,
            detail=str(exc),
        )
        raise
    result = get_adapter(llm_key.provider).validate(plaintext)
    llm_key_record_check(llm_key=llm_key, result=result, actor=actor)
    return result


def llm_key_record_check(*, llm_key: LLMKey, result: CheckResult, actor: Actor) -> LLMKey | None:
    """Apply a provider verdict to a stored key: the status transition and its audit trail.

    Only a definitive verdict changes the status; UNKNOWN records the error and leaves it.
    A verdict about a key that has since been replaced or removed is dropped. Returns the
    updated row, or None when the verdict was dropped.
    """
    now = timezone.now()
    if result.outcome == CheckOutcome.UNKNOWN:
        new_status = None
    else:
        new_status = KeyStatus.VALID if result.outcome == CheckOutcome.VALID else KeyStatus.INVALID
    current, previous = _record_check_locked(
        llm_key=llm_key, result=result, new_status=new_status, actor=actor, now=now
    )
    if (
        current is not None
        and previous != KeyStatus.INVALID
        and current.status == KeyStatus.INVALID
    ):
        # Only the transition notifies, and the row lock makes it happen once: later checks
        # of an invalid key, or a duplicate check, find it invalid already.
        llm_key_id = current.pk
        transaction.on_commit(lambda: _enqueue_invalid_notice(llm_key_id))
    return current


def _check_action(previous: str, new_status: str | None) -> str:
    if new_status is None:
        return KeyEvent.Action.CHECK_FAILED
    if new_status == previous:
        return KeyEvent.Action.CHECKED
    if new_status == KeyStatus.VALID:
        return KeyEvent.Action.BECAME_VALID
    return KeyEvent.Action.BECAME_INVALID


def _record_check_locked(
    *, llm_key: LLMKey, result: CheckResult, new_status: str | None, actor: Actor, now
) -> tuple[LLMKey | None, str]:
    """Lock the row, compare, save, insert the event, in one transaction: a concurrent check
    of the same key waits on the lock, then sees the status this one wrote."""
    with transaction.atomic():
        current = LLMKey.objects.select_for_update().filter(pk=llm_key.pk).first()
        if current is None or bytes(current.ciphertext) != bytes(llm_key.ciphertext):
            return None, ""
        previous = current.status
        current.last_checked_at = now
        # Not updated_at: a check changes the key's status, not the key, and the settings
        # page's "Last changed … by <admin>" must not say the admin changed it now.
        update_fields = ["last_checked_at", "last_error"]
        if new_status is None:
            current.last_error = result.reason[:300]
        else:
            current.status = new_status
            current.status_reason = result.reason[:300]
            current.last_error = ""
            update_fields += ["status", "status_reason"]
            if new_status == KeyStatus.VALID:
                current.last_verified_at = now
                update_fields.append("last_verified_at")
        current.save(update_fields=update_fields)
        _event(
            workspace_id=current.workspace_id,
            provider=current.provider,
            action=_check_action(previous, new_status),
            actor=actor,
            hint=current.hint,
            detail=f"{previous} → {current.status}: {result.reason}",
        )
    return current, previous


def _enqueue_invalid_notice(llm_key_id: int) -> None:
    from .tasks import llm_key_invalid_notify

    try:
        llm_key_invalid_notify.delay(llm_key_id)
    except Exception:  # noqa: BLE001 - broker down: the admins must still hear of it
        logger.warning(
            "Could not queue the invalid-key e-mail for key %s; sending it now.", llm_key_id
        )
        llm_key_invalid_notify(llm_key_id)


# What found a key invalid, in the words of the e-mail, by the actor of its audit event.
def notify_admins_key_invalid(
    workspace_id: int, reason: str, *, masked: str = "", provider: str = Provider.ANTHROPIC
) -> int:
    """E-mail every admin of the workspace that its key for ``provider`` stopped working,
    saying what found it (the periodic check, a refused AI request, an admin's check).
    Returns the count."""
    label = shape_for(provider).label
    workspace = Workspace.objects.get(pk=workspace_id)
    recipients = list(
        Membership.objects.filter(workspace=workspace, role=Membership.Role.ADMIN)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not recipients:
        return 0
    link = settings.SITE_URL.rstrip("/") + reverse("llm_key_settings", args=[workspace.slug])
    found_by = key_found_invalid_by(workspace_id=workspace_id, provider=provider)
    body = (
        f"The {label} API key{' ' + masked if masked else ''} of the workspace "
        f'"{workspace.name}" stopped working: {found_by} '
        f"({format_datetime(timezone.now())}).\n\n"
        f"{reason}\n\n"
        f"AI features of this workspace that use {label} are stopped until a valid key is "
        "saved: they do not fall back to AI credits.\n\n"
        f"Update or remove the key here: {link}\n"
    )
    return send_mail(
        subject=f"[{workspace.name}] Your {label} API key is invalid",
        message=body,
        from_email=None,
        recipient_list=recipients,
    )
