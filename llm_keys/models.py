"""Workspace provider keys and their audit trail.

Invariants:
- at most one key per (workspace, provider) (``llm_keys_llmkey_unique_provider``);
- ``status`` is one of unverified / valid / invalid (``llm_keys_llmkey_status_valid``);
- ``provider`` is one of the ``Provider`` values (``llm_keys_llmkey_provider_valid``);
- ``ciphertext`` is AES-GCM under the ring entry ``encryption_key_id`` with the row's
  associated data (see ``associated_data``); the plaintext is never stored;
- ``KeyEvent`` rows are append-only and never hold a key, only what happened, who and when.
"""

from django.conf import settings
from django.db import models

from providers.keys import shape_for


class Provider(models.TextChoices):
    ANTHROPIC = "anthropic", "Anthropic"
    OPENAI = "openai", "OpenAI"
    GEMINI = "gemini", "Google Gemini"


class KeyStatus(models.TextChoices):
    UNVERIFIED = "unverified", "Unverified"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"


class CredentialSource(models.TextChoices):
    """Which credentials pay for an AI request."""

    BYOK = "byok", "Workspace key"
    PLATFORM = "platform", "AI credits"
    NONE = "none", "None (refused)"


class LLMKey(models.Model):
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="llm_keys"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices, default=Provider.ANTHROPIC)
    ciphertext = models.BinaryField(editable=False)
    encryption_key_id = models.CharField(max_length=32, editable=False)
    hint = models.CharField(max_length=4, editable=False, help_text="Last 4 characters.")
    status = models.CharField(
        max_length=12, choices=KeyStatus.choices, default=KeyStatus.UNVERIFIED
    )
    status_reason = models.CharField(max_length=300, blank=True)
    last_error = models.CharField(
        max_length=300, blank=True, help_text="The last check that could not reach a verdict."
    )
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "LLM key"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "provider"], name="llm_keys_llmkey_unique_provider"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=KeyStatus.values), name="llm_keys_llmkey_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(provider__in=Provider.values),
                name="llm_keys_llmkey_provider_valid",
            ),
        ]
        indexes = [models.Index(fields=["status"], name="llm_keys_status_idx")]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} key {self.masked} ({self.status})"

    @property
    def masked(self) -> str:
        """The key in its provider's shape with only the last four shown: ``sk-ant-…WXYZ``,
        ``sk-…WXYZ``, ``AIza…WXYZ``."""
        return shape_for(self.provider).masked(self.hint)

    @property
    def associated_data(self) -> bytes:
        return associated_data_for(self.workspace_id, self.provider)


def associated_data_for(workspace_id: int, provider: str) -> bytes:
    """Bind a ciphertext to its row: a copy in another workspace's row fails to decrypt."""
    return f"llm_keys.LLMKey:{workspace_id}:{provider}".encode()


class KeyEvent(models.Model):
    class Action(models.TextChoices):
        SET = "set", "Key set"
        REPLACED = "replaced", "Key replaced"
        REMOVED = "removed", "Key removed"
        CHECKED = "checked", "Key checked"
        CHECK_FAILED = "check_failed", "Check could not reach the provider"
        BECAME_VALID = "became_valid", "Key became valid"
        BECAME_INVALID = "became_invalid", "Key became invalid"
        REJECTED = "rejected", "Key rejected, not saved"
        DECRYPT_FAILED = "decrypt_failed", "Stored key could not be decrypted"
        REENCRYPTED = "reencrypted", "Key re-encrypted"
        # A Message Batches or Files call an API token sent on the key (decision 125).
        PASSED_THROUGH = "passed_through", "Batches/Files call on the key"

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="key_events"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    action = models.CharField(max_length=20, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who acted when no user did: "system (periodic check)", "operator (set_llm_key)", ...
    actor_label = models.CharField(max_length=100, blank=True)
    hint = models.CharField(max_length=4, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="llm_keys_event_ws_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} — {self.workspace_id} by {self.actor_display}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("Key events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Key events are append-only.")

    @property
    def actor_display(self) -> str:
        if self.actor_id is not None:
            return self.actor.email or self.actor.get_username()
        return self.actor_label or "system"
