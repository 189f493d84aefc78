"""Support staff's view of AI requests: read-only and searchable (rows hold no prompt or key)."""

from __future__ import annotations

from django.contrib import admin

from workspaces.admin_mixins import ReadOnlyAdminMixin
from workspaces.formatting import format_credits

from .models import AIRequest


@admin.register(AIRequest)
class AIRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "workspace",
        "user_email",
        "model",
        "credential_source",
        "outcome",
        "tokens",
        "credits",
        "latency_ms",
    )
    list_filter = ("credential_source", "outcome", "provider", "stream")
    search_fields = (
        "workspace__name",
        "workspace__slug",
        "user__email",
        "model",
        "provider_request_id",
        "error_type",
        "provider_error_type",
    )
    list_select_related = ("workspace", "user")
    date_hierarchy = "created_at"
    readonly_fields = (
        "created_at",
        "workspace",
        "user_email",
        "provider",
        "model",
        "credential_source",
        "outcome",
        "error_type",
        "provider_error_type",
        "stream",
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "credits_charged",
        "prices",
        "latency_ms",
        "provider_request_id",
    )
    fields = readonly_fields

    # Support cannot open user pages: the e-mail as text, not a link to one.
    @admin.display(description="User", ordering="user__email")
    def user_email(self, obj: AIRequest) -> str:
        return obj.user.email if obj.user else "-"

    @admin.display(description="Tokens in / out")
    def tokens(self, obj: AIRequest) -> str:
        return f"{format_credits(obj.input_tokens)} / {format_credits(obj.output_tokens)}"

    @admin.display(description="Credits", ordering="credits_charged")
    def credits(self, obj: AIRequest) -> str:
        return format_credits(obj.credits_charged)


# Registers the Workspace admin (support's console of a workspace).
from . import workspace_admin  # noqa: E402, F401
