import functools
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from credits.selectors import credits_balance
from llm_keys.access import MemberContext, get_member_context
from llm_keys.models import CredentialSource, Provider
from llm_keys.selectors import credentials_next, key_found_invalid_by, workspace_admin_contacts

from .api import (
    aread_json_body,
    error_response,
    passed_on_headers,
    refused,
    relay_headers,
    stream_response,
)
from .database import database_section
from .errors import GatewayError
from .forms import PromptForm
from .limits import Slots, answered_holding, session_request_admit
from .models import AIRequest
from .selectors import workspace_statuses
from .services import (
    acreate_message,
    astream_message,
    call_begin,
    relayed_headers,
)
from .try_ai import PromptAnswer, ProviderOffer, offer_for, provider_offers, send_prompt


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """The site's ``CSRF_FAILURE_VIEW``: the API's JSON error shape under ``/api/``, so a
    script sees why it was refused; Django's own page everywhere else."""
    if not request.path.startswith("/api/"):
        return django_csrf_failure(request, reason)
    return error_response(
        refused(
            403,
            "csrf_failed",
            f"CSRF check failed ({reason}). Send the csrftoken cookie's value in the "
            "X-CSRFToken header.",
        )
    )


@csrf_protect
def _csrf_passed(request: HttpRequest) -> HttpResponse:
    """Reached only when Django's CSRF check passes; a failure answers ``csrf_failure``'s
    response instead of this empty one."""
    return HttpResponse(status=204)


def _session_member(request: HttpRequest, slug: str) -> MemberContext | HttpResponse:
    """The session API's first database section: the session's user, the CSRF check and
    the membership, before the body is read."""
    if not request.user.is_authenticated:
        raise refused(401, "authentication_error", "Log in first: this API uses your session.")
    checked = _csrf_passed(request)
    if checked.status_code != 204:
        return checked
    try:
        member = get_member_context(request, slug)
    except Http404:
        raise refused(404, "not_found_error", "No such workspace.") from None
    except PermissionDenied as exc:
        raise refused(403, "permission_error", str(exc)) from None
    return member


def _session_admitted(
    request: HttpRequest, slug: str
) -> tuple[MemberContext, Slots] | HttpResponse:
    member = _session_member(request, slug)
    if isinstance(member, HttpResponse):
        return member
    return member, session_request_admit(workspace_id=member.workspace.pk, user_id=request.user.pk)


def session_api(view):
    """Decorate a view of the Try AI page's session API, ``view(request, member, ...)``: POST
    only; the session's user, the CSRF check and the membership, then the member's and the
    workspace's limits (decision 127), in one database section before the body is read;
    every refusal in the API's JSON error shape. The concurrency slots are given back when
    the answer is sent (a stream's when it ends)."""

    @functools.wraps(view)
    async def admitted_view(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            response = error_response(refused(405, "invalid_request_error", "Use POST."))
            response["Allow"] = "POST"
            return response
        try:
            admitted = await database_section(_session_admitted)(request, slug)
        except GatewayError as error:
            return error_response(error)
        if isinstance(admitted, HttpResponse):
            return admitted
        member, slots = admitted
        return await answered_holding(slots, view(request, member, *args, **kwargs))

    # The CSRF check is made inside, after authentication, so every refusal is JSON.
    return csrf_exempt(admitted_view)


@session_api
async def messages_api(request: HttpRequest, member: MemberContext) -> HttpResponse:
    """``POST /api/v1/w/<slug>/messages``: the browser's API, on the member's session."""
    try:
        body = await aread_json_body(request)
        headers = passed_on_headers(request)
        call = await database_section(call_begin)(
            workspace=member.workspace, user=request.user, body=body, headers=headers
        )
        if call.stream:
            return stream_response(
                await astream_message(call, body=body, headers=headers, trailer=True)
            )
        result = await acreate_message(call, body=body, headers=headers)
    except GatewayError as error:
        return error_response(error)
    response = JsonResponse(result.as_json())
    response["X-Credential-Source"] = str(result.credential_source)
    return relay_headers(response, relayed_headers(call.source, result.result.headers))


@login_required
@require_GET
def workspace_home(request: HttpRequest, slug: str) -> HttpResponse:
    member = get_member_context(request, slug)
    (status,) = workspace_statuses(memberships=[member.membership])
    return render(
        request, "workspaces/workspace_home.html", {**member.as_context(), "status": status}
    )


@login_required
@require_http_methods(["GET", "POST"])
def ai_playground(request: HttpRequest, slug: str) -> HttpResponse:
    member = get_member_context(request, slug)
    workspace = member.workspace
    offers = provider_offers(workspace=workspace)
    form = PromptForm(request.POST or None, offers=offers)
    answer: PromptAnswer | None = None
    error: GatewayError | None = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                answer = send_prompt(workspace=workspace, user=request.user, **form.cleaned_data)
            except GatewayError as exc:
                error, status = exc, exc.http_status
        else:
            status = 400
    model = form["model"].value()
    return render(
        request,
        "ai_gateway/playground.html",
        {
            **_who_pays_context(member, offer_for(offers, model)),
            "form": form,
            "answer": answer,
            "error": error,
        },
        status=status,
    )


def _who_pays_context(member: MemberContext, offer: ProviderOffer | None) -> dict[str, Any]:
    """Who pays for the chosen model's provider (Anthropic's when none is offered)."""
    workspace = member.workspace
    provider = offer.provider if offer else Provider.ANTHROPIC
    next_credentials = offer.next_credentials if offer else credentials_next(workspace=workspace)
    context = {
        **member.as_context(),
        "provider": provider,
        "provider_label": Provider(provider).label,
        "next_credentials": next_credentials,
        "credits_balance": credits_balance(workspace=workspace),
    }
    if next_credentials.source == CredentialSource.NONE:
        context["found_by"] = key_found_invalid_by(workspace_id=workspace.pk, provider=provider)
        context["admin_contacts"] = workspace_admin_contacts(workspace=workspace)
    return context


@login_required
@require_GET
def ai_playground_status(request: HttpRequest, slug: str) -> JsonResponse:
    """``GET /w/<slug>/ai/status/``: what Try AI shows without a reload after a request —
    who pays next for the chosen model (``?model=``; and, with its provider's key invalid,
    why sending is off), the balance, and with ``?request_id=`` the tokens and credits of
    the reader's own request (a stopped stream never receives the ``gateway`` trailer that
    says them)."""
    member = get_member_context(request, slug)
    charged = None
    request_id = request.GET.get("request_id", "")
    if request_id:
        row = (
            AIRequest.objects.filter(
                workspace=member.workspace, user=request.user, provider_request_id=request_id
            )
            .order_by("-id")
            .first()
        )
        if row is not None:
            charged = {
                "outcome": row.outcome,
                "credential_source": row.credential_source,
                "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens,
                "credits_charged": row.credits_charged,
            }
    # The balance is read after the row: a row found was written in its settlement's
    # transaction, so the balance read next includes the charge (read first, it could still
    # hold the request's reservation while the row appeared in between).
    offers = provider_offers(workspace=member.workspace)
    context = _who_pays_context(member, offer_for(offers, request.GET.get("model")))
    return JsonResponse(
        {
            "provider": context["provider"],
            "credential_source": context["next_credentials"].source,
            "credits_balance": context["credits_balance"],
            "who_pays_html": render_to_string("ai_gateway/_who_pays.html", context, request),
            "send_blocked_html": render_to_string(
                "ai_gateway/_send_blocked.html", context, request
            ).strip(),
            "request": charged,
        }
    )
