"""Support staff's view of the ledger: read-only, plus a form to grant credits with a reason."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from workspaces.admin_mixins import ReadOnlyAdminMixin
from workspaces.formatting import format_credits
from workspaces.models import Workspace

from .exceptions import CreditsError
from .models import (
    CreditAlert,
    CreditEntry,
    CreditLimitEvent,
    CreditReservation,
    EntryKind,
    MemberCreditLimit,
)
from .selectors import credits_balance
from .services import credits_grant

# One grant at most ten monthly allowances of the default size: a typo of three extra zeros
# is refused, and a larger grant is several deliberate ones.
MAX_GRANT = 1_000_000


class GrantCreditsForm(forms.Form):
    workspace = forms.ModelChoiceField(queryset=Workspace.objects.order_by("name"))
    amount = forms.IntegerField(
        min_value=1,
        max_value=MAX_GRANT,
        help_text=f"Credits to add: a whole number from 1 to {MAX_GRANT:,}.",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Why these credits are granted; kept in the ledger.",
    )
    # One token per rendered form: a double submit grants once (the ledger's idempotency key).
    token = forms.UUIDField(widget=forms.HiddenInput, required=False)
    # Set by the confirmation step: the first submit only shows what the grant will do.
    confirmed = forms.BooleanField(widget=forms.HiddenInput, required=False)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why these credits are granted.")
        return reason


class ShortfallFilter(admin.SimpleListFilter):
    """Settlements whose usage the balance could not fully cover (SPEC §13)."""

    title = "shortfall"
    parameter_name = "shortfall"

    def lookups(self, request, model_admin):
        return [("yes", "Usage not covered (written off)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(written_off__gt=0)
        return queryset


@admin.register(CreditEntry)
class CreditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "workspace",
        "kind",
        "amount_display",
        "balance_after_display",
        "charged",
        "written_off",
        "reason",
        "actor_email",
    )
    list_filter = ("kind", ShortfallFilter)
    search_fields = ("workspace__name", "workspace__slug", "reason", "idempotency_key")
    list_select_related = ("workspace", "actor")
    date_hierarchy = "created_at"
    ordering = ("-id",)
    readonly_fields = (
        "workspace",
        "kind",
        "amount",
        "balance_after",
        "charged",
        "written_off",
        "idempotency_key",
        "hold",
        "settlement",
        "reason",
        "actor_email",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: CreditEntry) -> str:
        amount = format_credits(abs(obj.amount))
        # A settle or release gives back what a hold set aside: it is not credits added.
        if obj.kind == EntryKind.HOLD:
            return f"-{amount} held"
        if obj.kind == EntryKind.SETTLE:
            if obj.amount >= 0:
                return f"{amount} of the hold returned (charged {format_credits(obj.charged)})"
            return f"-{amount} beyond the hold (charged {format_credits(obj.charged)})"
        if obj.kind == EntryKind.RELEASE:
            return f"{amount} hold released"
        return f"{'+' if obj.amount > 0 else '-' if obj.amount < 0 else ''}{amount}"

    @admin.display(description="Balance after", ordering="balance_after")
    def balance_after_display(self, obj: CreditEntry) -> str:
        return format_credits(obj.balance_after)

    # Support cannot open user pages: the e-mail as text, not a link to one.
    @admin.display(description="By", ordering="actor__email")
    def actor_email(self, obj: CreditEntry) -> str:
        return obj.actor.email if obj.actor else "system"

    # Entries are never updated or deleted (the database refuses too): read-only here, and
    # grants go through the "Grant credits" form, which calls credits_grant.
    def has_grant_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.add_{self.opts.model_name}")

    def get_urls(self):
        grant = path(
            "grant/",
            self.admin_site.admin_view(self.grant_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_grant",
        )
        return [grant, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "has_grant_permission": self.has_grant_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def grant_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_grant_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = GrantCreditsForm(request.POST)
            if form.is_valid() and not form.cleaned_data["confirmed"]:
                data = form.cleaned_data
                balance = credits_balance(workspace=data["workspace"])
                return TemplateResponse(
                    request,
                    "admin/credits/creditentry/grant_confirm.html",
                    {
                        **self.admin_site.each_context(request),
                        "opts": self.opts,
                        "title": "Confirm the grant",
                        "form": form,
                        "data": data,
                        "balance": balance,
                        "balance_after": balance + data["amount"],
                    },
                )
            if form.is_valid():
                data = form.cleaned_data
                try:
                    entry = credits_grant(
                        workspace=data["workspace"],
                        amount=data["amount"],
                        reason=data["reason"],
                        actor=request.user,
                        idempotency_key=f"admin-grant:{data['token'] or uuid.uuid4()}",
                    )
                except (CreditsError, ValueError) as exc:
                    form.add_error(None, str(exc))
                else:
                    credits = f"{entry.amount:,} credit{'' if entry.amount == 1 else 's'}"
                    self.log_addition(request, entry, f"Granted {credits}: {entry.reason}")
                    self.message_user(
                        request,
                        f"Granted {credits} to {entry.workspace}. "
                        f"New balance: {entry.balance_after:,} credits.",
                        messages.SUCCESS,
                    )
                    url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
                    return HttpResponseRedirect(f"{url}?workspace={entry.workspace_id}")
        else:
            form = GrantCreditsForm(
                initial={"workspace": request.GET.get("workspace"), "token": uuid.uuid4()}
            )
        workspace = form["workspace"].value()
        chosen = (
            Workspace.objects.filter(pk=workspace).first() if str(workspace).isdigit() else None
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Grant credits",
            "form": form,
            "workspace": chosen,
            "balance": credits_balance(workspace=chosen) if chosen else None,
        }
        return TemplateResponse(request, "admin/credits/creditentry/grant.html", context)


@admin.register(MemberCreditLimit)
class MemberCreditLimitAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Limits are set by workspace admins (members page) or operators (command)."""

    list_display = ("workspace", "user", "monthly_limit", "updated_by", "updated_at")
    search_fields = ("workspace__slug", "user__email")
    list_select_related = ("workspace", "user", "updated_by")


@admin.register(CreditLimitEvent)
class CreditLimitEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "workspace", "description", "actor", "actor_label")
    search_fields = ("workspace__slug", "description", "actor_label")
    list_select_related = ("workspace", "actor")
    ordering = ("-id",)


@admin.register(CreditAlert)
class CreditAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "workspace", "state", "balance", "threshold", "emailed_at")
    list_filter = ("state",)
    search_fields = ("workspace__slug",)
    list_select_related = ("workspace",)
    ordering = ("-id",)


@admin.register(CreditReservation)
class CreditReservationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What AI requests hold now: an open one past its lease belongs to a dead process and is
    charged its whole reservation by the sweep (docs/decisions/100, 107)."""

    list_display = ("hold", "workspace", "held", "extensions", "state", "renewed_at", "closed_at")
    list_filter = ("state",)
    search_fields = ("workspace__slug",)
    list_select_related = ("workspace", "hold")
    ordering = ("-hold_id",)
