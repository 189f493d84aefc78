"""Support staff's view of a workspace: who is in it, its key status, balance and usage.

It sits with the gateway, the top layer, because it shows every layer's rows; the
workspaces app knows nothing of keys, credits or AI requests."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from credits.selectors import credits_balance
from llm_keys.models import LLMKey
from workspaces.models import Membership, Workspace

from .models import AIRequest


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)


class LLMKeyInline(admin.TabularInline):
    """Key status only; the key itself is changed on the settings page or by a command."""

    model = LLMKey
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("provider", "masked", "status", "status_reason", "last_checked_at")
    readonly_fields = fields
    verbose_name_plural = "LLM key"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Key")
    def masked(self, obj: LLMKey) -> str:
        return obj.masked


RECENT_AI_REQUESTS = 20


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "key_status", "balance", "created_at")
    search_fields = ("name", "slug")
    fields = ("name", "slug", "created_at", "balance", "recent_ai_requests")
    readonly_fields = ("created_at", "balance", "recent_ai_requests")
    inlines = (MembershipInline, LLMKeyInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workspace]:
        return (
            super()
            .get_queryset(request)
            .annotate(_balance=Coalesce("credit_account__balance", 0))
            .prefetch_related("llm_keys")
        )

    def get_fields(self, request: HttpRequest, obj: Workspace | None = None):
        if obj is None:
            return ("name", "slug")
        return super().get_fields(request, obj)

    @admin.display(description="Balance (credits)", ordering="_balance")
    def balance(self, obj: Workspace) -> str:
        if obj.pk is None:
            return "-"
        balance = getattr(obj, "_balance", None)
        return f"{credits_balance(workspace=obj) if balance is None else balance:,}"

    @admin.display(description=f"Recent AI requests (last {RECENT_AI_REQUESTS})")
    def recent_ai_requests(self, obj: Workspace) -> str:
        rows = list(
            AIRequest.objects.filter(workspace=obj)
            .select_related("user")
            .order_by("-created_at", "-id")[:RECENT_AI_REQUESTS]
        )
        if not rows:
            return "None yet."
        header = mark_safe(  # a constant, no data in it
            "<tr><th>When</th><th>User</th><th>Model</th><th>Paid with</th><th>Outcome</th>"
            "<th>Tokens in/out</th><th>Credits</th></tr>"
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td>"
            "<td>{}</td></tr>",
            (
                (
                    row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    row.user or "-",
                    row.model,
                    row.get_credential_source_display(),
                    row.get_outcome_display(),
                    row.input_tokens,
                    row.output_tokens,
                    row.credits_charged,
                )
                for row in rows
            ),
        )
        changelist = reverse("admin:ai_gateway_airequest_changelist") + f"?workspace={obj.pk}"
        return format_html(
            '<table>{}{}</table><p><a href="{}">All AI requests of this workspace</a></p>',
            header,
            body,
            changelist,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "has_grant_permission": request.user.has_perm("credits.add_creditentry"),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="LLM key")
    def key_status(self, obj: Workspace) -> str:
        keys = list(obj.llm_keys.all())
        if not keys:
            return "none (AI credits)"
        return ", ".join(f"{key.provider}: {key.status}" for key in keys)
