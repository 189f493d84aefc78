"""Writes for workspace API tokens, and the check every token request passes.

The settings page, the Django admin and the management commands all go through these
functions; the Anthropic-compatible endpoint calls ``api_token_authenticate``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from workspaces.models import Workspace
from workspaces.services import Actor

from .models import PREFIX_LENGTH, TOKEN_PREFIX, ApiToken, ApiTokenEvent

NAME_MAX_LENGTH = ApiToken._meta.get_field("name").max_length
# 32 random bytes: 256 bits, so a plain SHA-256 of the token cannot be reversed by guessing
# (decision 080).
SECRET_BYTES = 32
PREFIX_ALPHABET = string.ascii_letters + string.digits
# A token's last use is written at most this often, so busy tokens do not write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# A token: the prefix, a separator, 43 base64url characters of secret (32 bytes).
_PREFIX_RANDOM = PREFIX_LENGTH - len(TOKEN_PREFIX)
TOKEN_SHAPE = re.compile(
    re.escape(TOKEN_PREFIX) + rf"[A-Za-z0-9]{{{_PREFIX_RANDOM}}}_[A-Za-z0-9_-]{{43}}"
)


class ApiTokenNameError(ValueError):
    """The name is blank, too long, or already used by a live token of the workspace."""


class ApiTokenNotFoundError(LookupError):
    """No live token of the workspace has that name or id."""


@dataclass(frozen=True, slots=True)
class CreatedApiToken:
    """A token just created: the row, and the token itself, which is never shown again."""

    token: ApiToken
    raw_token: str

    def __repr__(self) -> str:
        return f"CreatedApiToken(token={self.token!r}, raw_token='***')"


@sensitive_variables("raw_token")
def api_token_hash(raw_token: str) -> str:
    """Return the stored form of a token: its SHA-256, in hex."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    prefix = TOKEN_PREFIX + "".join(
        secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH - len(TOKEN_PREFIX))
    )
    return prefix, f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def api_token_validate_name(*, workspace: Workspace, name: str) -> str:
    """Return the name stripped, or raise ApiTokenNameError saying what is wrong."""
    name = (name or "").strip()
    if not name:
        raise ApiTokenNameError("Give the token a name, such as the program that will use it.")
    if len(name) > NAME_MAX_LENGTH:
        raise ApiTokenNameError(
            f"A token name is at most {NAME_MAX_LENGTH} characters; this one has {len(name)}."
        )
    if any(not ch.isprintable() for ch in name):
        raise ApiTokenNameError("A token name cannot hold control characters or line breaks.")
    if ApiToken.objects.filter(workspace=workspace, name=name, revoked_at__isnull=True).exists():
        raise ApiTokenNameError(
            f"The workspace already has a live token named “{name}”; choose another name "
            "or revoke that token first."
        )
    return name


def _event(*, token: ApiToken, action: str, actor: Actor) -> None:
    ApiTokenEvent.objects.create(
        workspace_id=token.workspace_id,
        token=token,
        action=action,
        token_name=token.name,
        token_prefix=token.prefix,
        actor=actor.user,
        actor_label=actor.label,
    )


@sensitive_variables("raw_token")
def api_token_create(*, workspace: Workspace, name: str, actor: Actor) -> CreatedApiToken:
    """Create a token for the workspace; return it with the token, shown this once only."""
    name = api_token_validate_name(workspace=workspace, name=name)
    prefix, raw_token = _new_token()
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                workspace=workspace,
                name=name,
                prefix=prefix,
                last4=raw_token[-4:],
                token_hash=api_token_hash(raw_token),
                created_by=actor.user,
                created_by_label=actor.label,
                created_by_email=getattr(actor.user, "email", "") or "",
            )
            _event(token=token, action=ApiTokenEvent.Action.CREATED, actor=actor)
    except IntegrityError:
        # Two admins creating the same name at once: the partial unique index decides. (A
        # prefix collision, 1 in 62^8, would land here too and is worth a retry by hand.)
        raise ApiTokenNameError(
            f"The workspace already has a live token named “{name}”; choose another name."
        ) from None
    return CreatedApiToken(token=token, raw_token=raw_token)


def api_token_revoke(
    *, workspace: Workspace, actor: Actor, token_id: int | None = None, name: str | None = None
) -> ApiToken:
    """Revoke a live token of the workspace, named by id or by name; it is refused at once."""
    if (token_id is None) == (name is None):
        raise TypeError("Give token_id or name.")
    with transaction.atomic():
        lookup = {"pk": token_id} if token_id is not None else {"name": (name or "").strip()}
        token = (
            ApiToken.objects.select_for_update()
            .filter(workspace=workspace, revoked_at__isnull=True, **lookup)
            .first()
        )
        if token is None:
            raise ApiTokenNotFoundError(
                f"Workspace '{workspace.slug}' has no live API token "
                + (f"named “{name}”." if name is not None else "with that id.")
            )
        token.revoked_at = timezone.now()
        token.revoked_by = actor.user
        token.save(update_fields=["revoked_at", "revoked_by"])
        _event(token=token, action=ApiTokenEvent.Action.REVOKED, actor=actor)
    return token


def api_tokens_revoke_created_by(*, workspace: Workspace, email: str, actor: Actor) -> int:
    """Revoke every live token of the workspace created by ``email``; return how many."""
    ids = list(
        ApiToken.objects.filter(
            workspace=workspace, created_by_email__iexact=email.strip(), revoked_at__isnull=True
        ).values_list("pk", flat=True)
    )
    revoked = 0
    for token_id in ids:
        try:
            api_token_revoke(workspace=workspace, token_id=token_id, actor=actor)
        except ApiTokenNotFoundError:
            continue  # revoked meanwhile by someone else
        revoked += 1
    return revoked


@sensitive_variables("raw_token")
def api_token_authenticate(*, raw_token: str) -> ApiToken | None:
    """Return the live token this is, with its workspace, or None; note when it was used.

    One query reads the token and its workspace. Nothing is cached: a revoke is seen by the
    very next request in every process (decision 081). A deleted workspace deletes its
    tokens, so their requests find nothing.
    """
    # Anything not shaped like a token is refused before the database sees it (a NUL or a
    # lone surrogate in a header would otherwise fail the query, not the token).
    if not isinstance(raw_token, str) or not TOKEN_SHAPE.fullmatch(raw_token):
        return None
    prefix = raw_token[:PREFIX_LENGTH]
    token = (
        ApiToken.objects.select_related("workspace")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )
    # The prefix only finds the row; the whole token must match its hash, compared in
    # constant time so the comparison leaks nothing about how much of it was right.
    if token is None or not hmac.compare_digest(token.token_hash, api_token_hash(raw_token)):
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_RESOLUTION:
        # Conditional, so concurrent requests of one token write it once a minute at most.
        before = now - LAST_USED_RESOLUTION
        stale = ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=before)
        )
        if stale.update(last_used_at=now):
            token.last_used_at = now
    return token
