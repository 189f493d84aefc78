"""Workspace API tokens: how programs authenticate to the gateway, and their audit trail.

Invariants:
- only a SHA-256 hash of a token is stored, never the token; the token is shown once, when
  it is created (decision 080);
- a token is ``<prefix>_<secret>`` where the prefix (``byok_`` and 8 random characters) is
  unique and shown to people; it never starts with ``sk-ant-`` (``api_tokens_prefix_shape``);
- a name is unique among a workspace's live (unrevoked) tokens (``api_tokens_live_name_unique``);
- a revoked token stays revoked: ``revoked_at`` is set once and never cleared
  (``api_tokens_revoked_by_needs_revoked_at``; services never clear it);
- token events are append-only and hold names and prefixes only, never a token or its hash.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import Exact

TOKEN_PREFIX = "byok_"
PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
HASH_LENGTH = 64  # hex SHA-256


class ApiToken(models.Model):
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True)
    last4 = models.CharField(max_length=4)
    token_hash = models.CharField(max_length=HASH_LENGTH)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=100, blank=True)
    # Kept when the account is deleted, so the page still says whose token it is.
    created_by_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="api_tokens_live_name_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(prefix__startswith=TOKEN_PREFIX)
                & models.Q(Exact(Length("prefix"), PREFIX_LENGTH))
                & ~models.Q(prefix__startswith="sk-ant-"),
                name="api_tokens_prefix_shape",
            ),
            models.CheckConstraint(
                condition=models.Q(Exact(Length("token_hash"), HASH_LENGTH))
                & models.Q(Exact(Length("last4"), 4)),
                name="api_tokens_hash_and_last4_shape",
            ),
            models.CheckConstraint(
                condition=models.Q(revoked_by__isnull=True) | models.Q(revoked_at__isnull=False),
                name="api_tokens_revoked_by_needs_revoked_at",
            ),
            models.CheckConstraint(condition=~models.Q(name=""), name="api_tokens_name_not_blank"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return f"{self.prefix}_…{self.last4}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None

    @property
    def created_by_display(self) -> str:
        if self.created_by_id is not None:
            return self.created_by.email or self.created_by.get_username()
        return self.created_by_email or self.created_by_label or "system"


class ApiTokenEvent(models.Model):
    class Action(models.TextChoices):
        CREATED = "created", "Token created"
        REVOKED = "revoked", "Token revoked"

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="api_token_events"
    )
    token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    token_name = models.CharField(max_length=100)
    token_prefix = models.CharField(max_length=PREFIX_LENGTH)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who acted when no user did: "operator (create_api_token)", ...
    actor_label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "API token event"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="api_tokens_event_ws_idx")
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.token_name} by {self.actor_display}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("API token events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("API token events are append-only.")

    @property
    def actor_display(self) -> str:
        if self.actor_id is not None:
            return self.actor.email or self.actor.get_username()
        return self.actor_label or "system"
