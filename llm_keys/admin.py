"""Support staff's view of stored keys and their audit trail.

Nothing here can show or take a key: the ciphertext is never a field, a column, a filter or
a search target, there is no add form and no editable field, and every change (a check, a
removal) goes through ``llm_keys.services`` so the audit trail names the staff member.
"""

from __future__ import annotations

import time

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from workspaces.admin_mixins import ReadOnlyAdminMixin
from workspaces.formatting import format_datetime, format_relative

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
    "created_by_email",
    "updated_at",
    "updated_by_email",
)


@admin.register(LLMKey)
class LLMKeyAdmin(admin.ModelAdmin):
    list_display = (
        "workspace",
        "provider",
        "masked",
        "status",
        "status_reason",
        "last_checked",
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

    @admin.display(description="Last checked", ordering="last_checked_at")
    def last_checked(self, obj: LLMKey) -> str:
        if obj.last_checked_at is None:
            return "never"
        return f"{format_datetime(obj.last_checked_at)} ({format_relative(obj.last_checked_at)})"

    # Who changed a key, as text: support cannot open user pages, so no link to one.
    @admin.display(description="Created by")
    def created_by_email(self, obj: LLMKey) -> str:
        return obj.created_by.email if obj.created_by else "-"

    @admin.display(description="Updated by")
    def updated_by_email(self, obj: LLMKey) -> str:
        return obj.updated_by.email if obj.updated_by else "-"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/check/",
                self.admin_site.admin_view(self.check_view),
                name="{}_{}_check".format(*info),
            ),
            path(
                "<path:object_id>/remove/",
                self.admin_site.admin_view(self.remove_view),
                name="{}_{}_remove".format(*info),
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            # "Remove key" replaces Django's "Delete" link (decision 065).
            "show_delete": False,
            "has_check_permission": self.has_check_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _change_url(self, llm_key: LLMKey) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[llm_key.pk]
        )

    def check_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The "Check now" button of a key's page: the same check as the list action."""
        if not self.has_check_permission(request):
            raise PermissionDenied
        return require_POST(self._check_one)(request, object_id)

    def _check_one(self, request: HttpRequest, object_id: str) -> HttpResponse:
        llm_key = get_object_or_404(self.get_queryset(request), pk=object_id)
        self.check_now(request, self.get_queryset(request).filter(pk=llm_key.pk))
        if request.GET.get("return") == "workspace":
            # The workspace page's "Check key now": back where support clicked it.
            return HttpResponseRedirect(
                reverse("admin:workspaces_workspace_change", args=[llm_key.workspace_id])
            )
        return HttpResponseRedirect(self._change_url(llm_key))

    def remove_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The "Remove key" button: a confirmation, then ``llm_key_remove`` (audited)."""
        llm_key = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_delete_permission(request, llm_key):
            raise PermissionDenied
        if request.method == "POST":
            workspace = llm_key.workspace
            masked = llm_key.masked
            self.log_deletions(request, [llm_key])
            self.delete_model(request, llm_key)
            self.message_user(
                request,
                f"Removed the key {masked} of {workspace}. Its AI requests use AI credits again.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(
                reverse("admin:workspaces_workspace_change", args=[workspace.pk])
                if self.admin_site.is_registered(type(workspace))
                else reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Remove the key {llm_key.masked} of {llm_key.workspace}?",
            "llm_key": llm_key,
            "object": llm_key,
        }
        return TemplateResponse(request, "admin/llm_keys/llmkey/remove.html", context)

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
        "actor_display",
        "actor_label",
        "hint",
        "detail",
    )
    readonly_fields = fields

    @admin.display(description="By")
    def actor_display(self, obj: KeyEvent) -> str:
        return obj.actor_display
