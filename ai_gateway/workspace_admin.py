"""Support staff's view of a workspace: who is in it, its key status, balance and usage.

The page reads top-down the way support answers a ticket: the key's status and the
balance first, then the members, then the recent AI requests (decision 065).

It sits with the gateway, the top layer, because it shows every layer's rows; the
workspaces app knows nothing of keys, credits or AI requests.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from credits.selectors import credits_balance
from llm_keys.models import KeyStatus, LLMKey, Provider
from workspaces.formatting import format_credits, format_datetime, format_relative
from workspaces.models import Membership, Workspace

from .models import AIRequest


class EmailAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin login asks for the e-mail address people log in with."""

    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


admin.site.login_form = EmailAdminAuthenticationForm
admin.site.site_header = "Platform AI support"
admin.site.site_title = "Platform AI support"
admin.site.index_title = "Support console"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)

    def get_fields(self, request: HttpRequest, obj=None):
        if self.has_change_permission(request, obj):
            return self.fields
        # Read-only viewers (support) get the e-mail as text: a link to the user's page
        # would lead to a page they are not allowed to open.
        return ("member_email", "role", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if self.has_change_permission(request, obj):
            return self.readonly_fields
        return ("member_email", "role", "created_at")

    @admin.display(description="Member")
    def member_email(self, obj: Membership) -> str:
        return obj.user.email


def _key_of(obj: Workspace) -> LLMKey | None:
    keys = list(obj.llm_keys.all())
    return keys[0] if keys else None


RECENT_AI_REQUESTS = 20


class KeyStatusFilter(admin.SimpleListFilter):
    """Workspaces by the status of their Anthropic key, or without one (on AI credits)."""

    title = "key status"
    parameter_name = "key_status"

    def lookups(self, request, model_admin):
        return [*KeyStatus.choices, ("none", "No key (AI credits)")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.exclude(llm_keys__provider=Provider.ANTHROPIC)
        if value in KeyStatus.values:
            return queryset.filter(
                llm_keys__provider=Provider.ANTHROPIC, llm_keys__status=value
            ).distinct()
        return queryset


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "key_status", "key_reason", "key_last_checked", "balance")
    list_filter = (KeyStatusFilter,)
    search_fields = ("name", "slug", "memberships__user__email")
    search_help_text = "Search by workspace name, slug, or a member's e-mail."
    fields = ("name", "slug", "created_at", "key_summary", "balance")
    readonly_fields = ("created_at", "key_summary", "balance")
    inlines = (MembershipInline,)
    # The workspace's own pages are for its members; support (not a member) would get a 404.
    view_on_site = False
    change_form_template = "admin/workspaces/workspace/change_form.html"

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
        return format_credits(credits_balance(workspace=obj) if balance is None else balance)

    @admin.display(description="Key status")
    def key_status(self, obj: Workspace) -> str:
        key = _key_of(obj)
        return "none (AI credits)" if key is None else key.get_status_display()

    @admin.display(description="Reason")
    def key_reason(self, obj: Workspace) -> str:
        key = _key_of(obj)
        return (key.status_reason or key.last_error or "-") if key else "-"

    @admin.display(description="Last checked")
    def key_last_checked(self, obj: Workspace) -> str:
        key = _key_of(obj)
        if key is None or key.last_checked_at is None:
            return "-" if key is None else "never"
        return f"{format_datetime(key.last_checked_at)} ({format_relative(key.last_checked_at)})"

    @admin.display(description="LLM key")
    def key_summary(self, obj: Workspace) -> str:
        from llm_keys.selectors import llm_key_next_check_by

        key = _key_of(obj)
        if key is None:
            return "No key: AI requests use AI credits."
        rows = [
            ("Key", key.masked),
            ("Status", key.get_status_display()),
            ("Reason", key.status_reason or "-"),
            ("Last check error", key.last_error or "-"),
            (
                "Last checked",
                f"{format_datetime(key.last_checked_at)}"
                + (f" ({format_relative(key.last_checked_at)})" if key.last_checked_at else ""),
            ),
        ]
        if key.status == KeyStatus.UNVERIFIED:
            next_check = llm_key_next_check_by(key)
            rows.append(
                ("Next check", f"by {format_datetime(next_check)} ({format_relative(next_check)})")
            )
        table = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        link = reverse("admin:llm_keys_llmkey_change", args=[key.pk])
        return format_html(
            '<table class="support-summary">{}</table><p><a href="{}">Open the key '
            "(Check now, Remove key)</a></p>",
            table,
            link,
        )

    def recent_ai_requests(self, obj: Workspace) -> str:
        rows = list(
            AIRequest.objects.filter(workspace=obj)
            .select_related("user")
            .order_by("-created_at", "-id")[:RECENT_AI_REQUESTS]
        )
        if not rows:
            return mark_safe("<p>No AI requests yet.</p>")  # a constant
        header = mark_safe(  # a constant, no data in it
            "<thead><tr><th scope='col'>When</th><th scope='col'>User</th>"
            "<th scope='col'>Model</th><th scope='col'>Paid with</th><th scope='col'>Outcome</th>"
            "<th scope='col'>Tokens in / out</th><th scope='col'>Credits</th></tr></thead>"
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td>"
            "<td>{}</td></tr>",
            (
                (
                    format_datetime(row.created_at),
                    row.user.email if row.user else "-",
                    row.model,
                    row.get_credential_source_display(),
                    row.get_outcome_display(),
                    format_credits(row.input_tokens),
                    format_credits(row.output_tokens),
                    format_credits(row.credits_charged),
                )
                for row in rows
            ),
        )
        changelist = reverse("admin:ai_gateway_airequest_changelist") + f"?workspace={obj.pk}"
        return format_html(
            '<div class="table-scroll"><table>{}<tbody>{}</tbody></table></div>'
            '<p><a href="{}">All AI requests of this workspace</a></p>',
            header,
            body,
            changelist,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "has_grant_permission": request.user.has_perm("credits.add_creditentry"),
            # "Check key now" right on the workspace: one click, and back here after it.
            "llm_key_to_check": (
                _key_of(obj)
                if obj is not None and request.user.has_perm("llm_keys.change_llmkey")
                else None
            ),
            "recent_ai_requests": self.recent_ai_requests(obj) if obj is not None else "",
            "recent_ai_requests_title": f"Recent AI requests (last {RECENT_AI_REQUESTS})",
        }
        return super().change_view(request, object_id, form_url, extra_context)
