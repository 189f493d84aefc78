"""Support staff's view of AI requests: read-only and searchable (rows hold no prompt or key)."""

from __future__ import annotations

from django.contrib import admin

from workspaces.admin_mixins import ReadOnlyAdminMixin

from .models import AIRequest


@admin.register(AIRequest)
class AIRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "workspace",
        "user",
        "model",
        "credential_source",
        "outcome",
        "input_tokens",
        "output_tokens",
        "credits_charged",
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
        "user",
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
        "latency_ms",
        "provider_request_id",
    )
    fields = readonly_fields


# Registers the Workspace admin (support's console of a workspace).
from . import workspace_admin  # noqa: E402, F401
