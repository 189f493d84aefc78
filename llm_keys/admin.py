"""Support staff's view of stored keys and their audit trail.

Nothing here can show or take a key: the ciphertext is never a field, a column, a filter or
a search target, there is no add form and no editable field, and every change (a check, a
removal) goes through ``llm_keys.services`` so the audit trail names the staff member.
"""

from __future__ import annotations

import time

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from workspaces.admin_mixins import ReadOnlyAdminMixin

from .models import KeyEvent, LLMKey
from .ratelimit import permit_reserve, permit_wait
from .services import Actor, KeyUnreadableError, llm_key_check, llm_key_remove
from .tasks import llm_key_check_task

# "Check now" waits this long for a permit in the request; a later permit is a queued check.
ADMIN_MAX_WAIT_SECONDS = 5.0

# Fields whose value is (or is derived from) the secret: never a lookup, even by URL.
SECRET_FIELDS = ("ciphertext",)

LLM_KEY_FIELDS = (
    "workspace",
    "provider",
    "masked",
    "status",
    "status_reason",
    "last_error",
    "last_checked_at",
    "last_verified_at",
    "encryption_key_id",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
)


@admin.register(LLMKey)
class LLMKeyAdmin(admin.ModelAdmin):
    list_display = (
        "workspace",
        "provider",
        "masked",
        "status",
        "status_reason",
        "last_checked_at",
        "updated_at",
    )
    list_filter = ("status", "provider")
    search_fields = ("workspace__name", "workspace__slug")
    list_select_related = ("workspace",)
    fields = LLM_KEY_FIELDS
    readonly_fields = LLM_KEY_FIELDS
    actions = ("check_now",)
    ordering = ("workspace__name", "provider")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LLMKey | None = None) -> bool:
        # Stored keys are only ever changed by the services (settings page, commands).
        return False

    def has_check_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # A ?ciphertext__startswith=... URL would be an oracle that spells the ciphertext out.
        if lookup.split("__")[0] in SECRET_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            # Django's confirmation page, but the removal itself goes through llm_key_remove.
            func, name, _ = actions["delete_selected"]
            actions["delete_selected"] = (func, name, "Remove key")
        return actions

    @admin.display(description="Key")
    def masked(self, obj: LLMKey) -> str:
        return obj.masked

    @admin.action(description="Check now", permissions=["check"])
    def check_now(self, request: HttpRequest, queryset: QuerySet[LLMKey]) -> None:
        actor = Actor(user=request.user)
        for llm_key in queryset.select_related("workspace"):
            before = llm_key.status
            # The provider-wide limit holds for support too: a short wait here, a longer one
            # as a queued check that runs when its permit is due.
            permit_at = permit_reserve(f"llm-key-check:{llm_key.provider}")
            wait = permit_at - time.time()
            if wait > ADMIN_MAX_WAIT_SECONDS:
                llm_key_check_task.apply_async(
                    args=(llm_key.pk,),
                    kwargs={"requested_at": timezone.now().isoformat(), "permit_at": permit_at},
                    countdown=wait,
                )
                self.message_user(
                    request,
                    f"{llm_key.workspace}: queued. Checks are at the provider-wide limit; this "
                    f"one runs in about {wait:.0f} s. Reload to see the result.",
                    messages.WARNING,
                )
                continue
            permit_wait(permit_at)
            try:
                result = llm_key_check(llm_key=llm_key, actor=actor)
            except KeyUnreadableError as exc:
                self.message_user(
                    request,
                    f"{llm_key.workspace}: the stored key cannot be decrypted ({exc}). "
                    "Its status is unchanged.",
                    messages.ERROR,
                )
                continue
            llm_key.refresh_from_db()
            summary = f"{before} → {llm_key.status}: {result.reason}"
            self.log_change(request, llm_key, f"Checked now: {summary}")
            level = messages.ERROR if llm_key.status == "invalid" else messages.SUCCESS
            self.message_user(request, f"{llm_key.workspace}: {summary}", level)

    def delete_model(self, request: HttpRequest, obj: LLMKey) -> None:
        llm_key_remove(
            workspace=obj.workspace, provider=obj.provider, actor=Actor(user=request.user)
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[LLMKey]) -> None:
        for llm_key in queryset.select_related("workspace"):
            self.delete_model(request, llm_key)


@admin.register(KeyEvent)
class KeyEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "workspace",
        "provider",
        "action",
        "actor_display",
        "hint",
        "detail",
    )
    list_filter = ("action", "provider")
    search_fields = (
        "workspace__name",
        "workspace__slug",
        "actor__email",
        "actor_label",
        "detail",
    )
    list_select_related = ("workspace", "actor")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "workspace",
        "provider",
        "action",
        "actor",
        "actor_label",
        "hint",
        "detail",
    )
    readonly_fields = fields

    @admin.display(description="By")
    def actor_display(self, obj: KeyEvent) -> str:
        return obj.actor_display
