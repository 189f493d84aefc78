from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from .access import get_member_context
from .forms import LLMKeyForm
from .models import KeyStatus, Provider
from .selectors import (
    credentials_next,
    key_cards,
    key_events_recent,
    llm_key_get,
    llm_key_next_check_by,
)
from .services import (
    Actor,
    KeyNotSavedError,
    KeyUnreadableError,
    llm_key_check,
    llm_key_remove,
    llm_key_set,
)


@sensitive_post_parameters("api_key")
@login_required
@require_http_methods(["GET", "POST"])
def llm_key_settings(request, slug):
    member = get_member_context(request, slug, admin=True)
    workspace = member.workspace
    form = LLMKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            llm_key = llm_key_set(
                workspace=workspace,
                provider=form.cleaned_data["provider"],
                raw_key=form.cleaned_data["api_key"],
                actor=Actor(user=request.user),
            )
        except KeyNotSavedError as exc:
            form.add_error(
                "api_key",
                f"{exc.reason} The key was not saved; "
                "the workspace's current setting is unchanged.",
            )
        else:
            label = llm_key.get_provider_display()
            if llm_key.status == KeyStatus.VALID:
                messages.success(
                    request,
                    f"Your {label} key {llm_key.masked} is saved and verified. {label} requests "
                    "of this workspace now use it; no AI credits are consumed.",
                )
            else:
                messages.warning(
                    request,
                    f"Your {label} key {llm_key.masked} is saved, but {label} could not be "
                    "reached to verify it. It will be checked again automatically within a few "
                    f"minutes (see “Next check” below); {label} requests use it meanwhile.",
                )
            return redirect("llm_key_settings", slug=workspace.slug)

    # Every provider's key with who changed it last, in one query, for the key cards.
    cards = key_cards(workspace=workspace)
    llm_key = next(card.llm_key for card in cards if card.provider == Provider.ANTHROPIC)
    return render(
        request,
        "llm_keys/settings.html",
        {
            **member.as_context(),
            "form": form,
            "llm_key": llm_key,
            "events": key_events_recent(workspace=workspace, limit=10),
            "status_choices": KeyStatus,
            "next_credentials": credentials_next(workspace=workspace),
            "next_check_by": llm_key_next_check_by(llm_key) if llm_key else None,
            "key_cards": cards,
        },
        status=400 if form.errors else 200,
    )


def _provider_posted(request: HttpRequest) -> str | None:
    """The ``provider`` field of a remove or check POST (Anthropic when absent, as before
    there were several); None for a value that is not a provider."""
    provider = request.POST.get("provider") or Provider.ANTHROPIC
    return provider if provider in Provider.values else None


@login_required
@require_POST
def llm_key_remove_view(request, slug):
    workspace = get_member_context(request, slug, admin=True).workspace
    provider = _provider_posted(request)
    if provider is None:
        messages.error(request, "That provider is not supported: nothing was removed.")
        return redirect("llm_key_settings", slug=workspace.slug)
    label = Provider(provider).label
    if llm_key_remove(workspace=workspace, provider=provider, actor=Actor(user=request.user)):
        messages.success(
            request,
            f"The {label} key is removed. {label} requests of this workspace use AI credits again.",
        )
    else:
        messages.info(
            request, f"There was no {label} key to remove; {label} requests already use AI credits."
        )
    return redirect("llm_key_settings", slug=workspace.slug)


@login_required
@require_POST
def llm_key_check_view(request, slug):
    member = get_member_context(request, slug, admin=True)
    workspace = member.workspace
    provider = _provider_posted(request)
    if provider is None:
        messages.error(request, "That provider is not supported: nothing was checked.")
        return redirect("llm_key_settings", slug=workspace.slug)
    label = Provider(provider).label
    llm_key = (
        member.llm_key
        if provider == Provider.ANTHROPIC
        else llm_key_get(workspace=workspace, provider=provider)
    )
    if llm_key is None:
        messages.info(request, f"There is no {label} key to check. Save a key first.")
        return redirect("llm_key_settings", slug=workspace.slug)
    try:
        result = llm_key_check(llm_key=llm_key, actor=Actor(user=request.user))
    except KeyUnreadableError:
        messages.error(
            request,
            "The stored key cannot be decrypted with this server's encryption keys. Its status "
            "is unchanged; ask your operators to restore the key ring, or save the key again.",
        )
        return redirect("llm_key_settings", slug=workspace.slug)
    if result.outcome == "valid":
        messages.success(request, f"{label} accepted the key. {label} requests use it.")
    elif result.outcome == "invalid":
        messages.error(
            request,
            f"{result.reason} {label} requests are stopped until you save a valid key "
            "or remove this one.",
        )
    else:
        messages.warning(
            request,
            f"Could not check the key now: {result.reason} Its status is unchanged; it will be "
            "checked again automatically.",
        )
    return redirect("llm_key_settings", slug=workspace.slug)
