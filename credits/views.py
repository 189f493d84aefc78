from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from llm_keys.access import get_member_context
from workspaces.models import Membership

from .exceptions import CreditsError
from .forms import MemberLimitDefaultForm, MemberLimitForm
from .selectors import credits_member_limit_default, member_credits_rows
from .services import credits_member_limit_default_set, credits_member_limit_set


def _limit_choice(row, limit_form: MemberLimitForm, failed_member) -> tuple[str, str]:
    """Return the choice and the number a row's form shows: what is saved, or for the row
    whose form was refused, what the admin typed."""
    if failed_member is not None and str(row.membership.user_id) == str(failed_member):
        return limit_form.data.get("mode", ""), limit_form.data.get("monthly_limit", "")
    if row.limit_source != "member":
        return MemberLimitForm.MODE_DEFAULT, ""
    if row.limit is None:
        return MemberLimitForm.MODE_NONE, ""
    return MemberLimitForm.MODE_AMOUNT, str(row.limit)


@login_required
@require_http_methods(["GET", "POST"])
def members_settings(request, slug):
    member = get_member_context(request, slug, admin=True)
    workspace = member.workspace
    limit_form = MemberLimitForm()
    default_form = MemberLimitDefaultForm(
        initial={"default": credits_member_limit_default(workspace=workspace)}
    )
    failed_member = None
    if request.method == "POST":
        if request.POST.get("action") == "default":
            default_form = MemberLimitDefaultForm(request.POST)
            if default_form.is_valid():
                credits_member_limit_default_set(
                    workspace=workspace,
                    default=default_form.cleaned_data["default"],
                    actor=request.user,
                )
                messages.success(request, "The default member limit is saved.")
                return redirect("members_settings", slug=workspace.slug)
        else:
            limit_form = MemberLimitForm(request.POST)
            if limit_form.is_valid():
                data = limit_form.cleaned_data
                membership = (
                    Membership.objects.filter(workspace=workspace, user_id=data["member"])
                    .select_related("user")
                    .first()
                )
                if membership is None:
                    limit_form.add_error(None, "That person is not a member of this workspace.")
                else:
                    try:
                        credits_member_limit_set(
                            workspace=workspace,
                            member=membership.user,
                            monthly_limit=(
                                data["monthly_limit"]
                                if data["mode"] == MemberLimitForm.MODE_AMOUNT
                                else None
                            ),
                            use_default=data["mode"] == MemberLimitForm.MODE_DEFAULT,
                            actor=request.user,
                        )
                    except (CreditsError, ValueError) as exc:
                        limit_form.add_error(None, str(exc))
                    else:
                        messages.success(request, limit_form.saved_message(membership.user.email))
                        return redirect("members_settings", slug=workspace.slug)
            failed_member = limit_form.data.get("member")
    failed = bool(limit_form.is_bound and limit_form.errors) or bool(default_form.errors)
    return render(
        request,
        "credits/members.html",
        {
            **member.as_context(),
            "rows": [
                (row, *_limit_choice(row, limit_form, failed_member))
                for row in member_credits_rows(workspace=workspace)
            ],
            "limit_form": limit_form,
            "default_form": default_form,
            "failed_member": str(failed_member or ""),
        },
        status=400 if failed else 200,
    )
