"""Support staff's view of API tokens and their audit trail.

Nothing here shows or takes a token: the hash is never a field, a column, a filter or a
search target; there is no add form and no editable field; revoking goes through
``api_tokens.services`` so the audit trail names the staff member.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import ApiToken, ApiTokenEvent
from .services import Actor, ApiTokenNotFoundError, api_token_revoke

TOKEN_FIELDS = (
    "workspace",
    "name",
    "masked",
    "created_by",
    "created_by_label",
    "created_at",
    "last_used_at",
    "revoked_at",
    "revoked_by",
)


class RevokedFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return (("live", "Active"), ("revoked", "Revoked"))

    def queryset(self, request, queryset):
        if self.value() == "live":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "workspace",
        "masked",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (RevokedFilter,)
    search_fields = ("name", "prefix", "workspace__slug", "workspace__name", "created_by__email")
    list_select_related = ("workspace", "created_by")
    fields = TOKEN_FIELDS
    readonly_fields = TOKEN_FIELDS
    actions = ("revoke_tokens",)

    @admin.display(description="Token")
    def masked(self, obj: ApiToken) -> str:
        return obj.masked

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # A ?token_hash__startswith=... URL would be an oracle that spells the hash out.
        if lookup.split("__")[0] == "token_hash":
            return False
        return super().lookup_allowed(lookup, value, request)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Revoke, never delete: the audit trail and usage rows keep pointing at the token.
        return False

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True).select_related("workspace"):
            try:
                api_token_revoke(
                    workspace=token.workspace,
                    token_id=token.pk,
                    actor=Actor(user=request.user, label="support (Django admin)"),
                )
            except ApiTokenNotFoundError:
                continue
            revoked += 1
        self.message_user(
            request,
            f"Revoked {revoked} token(s); requests that use them are refused from now on.",
            messages.SUCCESS,
        )


EVENT_FIELDS = (
    "created_at",
    "workspace",
    "action",
    "token_name",
    "token_prefix",
    "actor",
    "actor_label",
)


@admin.register(ApiTokenEvent)
class ApiTokenEventAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "workspace",
        "action",
        "token_name",
        "token_prefix",
        "actor_display",
    )
    list_filter = ("action",)
    search_fields = ("token_name", "token_prefix", "workspace__slug", "actor__email")
    list_select_related = ("workspace", "actor")
    fields = EVENT_FIELDS
    readonly_fields = EVENT_FIELDS

    @admin.display(description="Who")
    def actor_display(self, obj: ApiTokenEvent) -> str:
        return obj.actor_display

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
