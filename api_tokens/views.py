from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from llm_keys.access import get_member_context

from .forms import ApiTokenCreateForm
from .models import ApiToken
from .selectors import (
    api_token_events_recent,
    api_token_former_admin_creators,
    api_tokens_list,
)
from .services import (
    Actor,
    ApiTokenNameError,
    ApiTokenNotFoundError,
    api_token_create,
    api_tokens_revoke_created_by,
)
from .services import api_token_revoke as api_token_revoke_service


def _page(request, member, *, form, created=None, status=200):
    workspace = member.workspace
    return render(
        request,
        "api_tokens/settings.html",
        {
            **member.as_context(),
            "form": form,
            "created": created,
            "tokens": api_tokens_list(workspace=workspace),
            "former_admins": api_token_former_admin_creators(workspace=workspace),
            "events": api_token_events_recent(workspace=workspace, limit=10),
        },
        status=status,
    )


# never_cache: the one answer that shows a new token must not be kept by any cache.
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens_settings(request, slug):
    member = get_member_context(request, slug, admin=True)
    workspace = member.workspace
    form = ApiTokenCreateForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            created = api_token_create(
                workspace=workspace, name=form.cleaned_data["name"], actor=Actor(user=request.user)
            )
        except ApiTokenNameError as exc:
            form.add_error("name", str(exc))
        else:
            # Rendered, not redirected: the token must not travel through the session or a URL.
            return _page(
                request,
                member,
                form=ApiTokenCreateForm(workspace=workspace),
                created=created,
                status=201,
            )
    return _page(request, member, form=form, status=400 if form.errors else 200)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_token_revoke(request, slug, token_id):
    member = get_member_context(request, slug, admin=True)
    workspace = member.workspace
    token = ApiToken.objects.filter(workspace=workspace, pk=token_id).first()
    if token is None:
        raise Http404("No such API token in this workspace.")
    if not token.is_live:
        messages.info(request, f"The token “{token.name}” was already revoked.")
        return redirect("api_tokens_settings", slug=workspace.slug)
    if request.method == "POST":
        try:
            api_token_revoke_service(
                workspace=workspace, token_id=token.pk, actor=Actor(user=request.user)
            )
        except ApiTokenNotFoundError:
            messages.info(request, f"The token “{token.name}” was already revoked.")
        else:
            messages.success(
                request,
                f"The token “{token.name}” ({token.masked}) is revoked; requests that use it "
                "are refused from now on.",
            )
        return redirect("api_tokens_settings", slug=workspace.slug)
    return render(
        request, "api_tokens/revoke_confirm.html", {**member.as_context(), "token": token}
    )


@never_cache
@login_required
@require_POST
def api_tokens_revoke_by_creator(request, slug):
    member = get_member_context(request, slug, admin=True)
    email = request.POST.get("email", "").strip()
    revoked = api_tokens_revoke_created_by(
        workspace=member.workspace, email=email, actor=Actor(user=request.user)
    )
    if revoked:
        messages.success(
            request,
            f"{revoked} token{'s' if revoked != 1 else ''} of {email} "
            f"{'are' if revoked != 1 else 'is'} revoked; requests that use "
            f"{'them' if revoked != 1 else 'it'} are refused from now on.",
        )
    else:
        messages.info(request, f"No live token of {email} was left to revoke.")
    return redirect("api_tokens_settings", slug=member.workspace.slug)
