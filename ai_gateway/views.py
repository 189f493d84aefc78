import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from workspaces.access import get_workspace_for_member

from .errors import BadRequestError, GatewayError
from .forms import PromptForm
from .selectors import credentials_next
from .services import GatewayStream, MessageResponse, create_message

API_FIELDS = frozenset({"model", "max_tokens", "messages", "system", "stream"})


def _error(status: int, error_type: str, message: str) -> JsonResponse:
    return JsonResponse(
        {"type": "error", "error": {"type": error_type, "message": message}}, status=status
    )


def _gateway_error(error: GatewayError) -> JsonResponse:
    return _error(error.http_status, error.error_type, error.message)


class _JsonCsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, answering a refusal in the API's JSON error shape."""

    def _reject(self, request: HttpRequest, reason: str) -> JsonResponse:
        return _error(
            403,
            "csrf_failed",
            f"CSRF check failed ({reason}). Send the csrftoken cookie's value in the "
            "X-CSRFToken header.",
        )


def _parse_body(request: HttpRequest) -> dict[str, Any]:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise BadRequestError(
            f"The request body is too large (at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} "
            "bytes); shorten the messages."
        ) from None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError(
            "The body must be JSON in Anthropic's Messages form: "
            '{"model": ..., "max_tokens": ..., "messages": [...]}.'
        ) from None
    if not isinstance(body, dict):
        raise BadRequestError("The body must be a JSON object.")
    unknown = sorted(set(body) - API_FIELDS)
    if unknown:
        raise BadRequestError(
            f"Unsupported field(s): {', '.join(unknown)}. Supported: "
            f"{', '.join(sorted(API_FIELDS))}."
        )
    missing = [name for name in ("model", "max_tokens", "messages") if name not in body]
    if missing:
        raise BadRequestError(f"Missing required field(s): {', '.join(missing)}.")
    if not isinstance(body.get("stream", False), bool):
        raise BadRequestError("'stream' must be true or false.")
    return body


class _EventRelay:
    """Server-sent events of a gateway stream; ``close()`` (a client gone) ends the stream."""

    def __init__(self, stream: GatewayStream):
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        stream = self._stream
        try:
            for event in stream:
                data = event.data
                if event.event == "message_stop":
                    data = {
                        **data,
                        "credential_source": stream.credential_source,
                        "credits_charged": stream.credits_charged,
                    }
                yield _sse(event.event, data)
        except GatewayError as error:
            yield _sse(
                "error",
                {"type": "error", "error": {"type": error.error_type, "message": error.message}},
            )

    def close(self) -> None:
        self._stream.close()


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@csrf_exempt  # checked inside, after authentication, so every refusal is JSON
def messages_api(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Use POST.")
        response["Allow"] = "POST"
        return response
    if not request.user.is_authenticated:
        return _error(401, "authentication_error", "Log in first: this API uses your session.")
    refusal = _JsonCsrfCheck(lambda _request: None).process_view(request, None, (), {})
    if refusal is not None:
        return refusal
    try:
        workspace = get_workspace_for_member(request, slug)
    except Http404:
        return _error(404, "not_found_error", "No such workspace.")
    except PermissionDenied as exc:
        return _error(403, "permission_error", str(exc))
    try:
        body = _parse_body(request)
        result = create_message(
            workspace=workspace,
            user=request.user,
            model=body["model"],
            messages=body["messages"],
            max_tokens=body["max_tokens"],
            system=body.get("system"),
            stream=body.get("stream", False),
        )
    except GatewayError as error:
        return _gateway_error(error)
    if isinstance(result, MessageResponse):
        return JsonResponse(result.as_json())
    response = StreamingHttpResponse(_EventRelay(result), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response["X-Credential-Source"] = result.credential_source
    return response


@login_required
@require_http_methods(["GET", "POST"])
def ai_playground(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = get_workspace_for_member(request, slug)
    form = PromptForm(request.POST or None)
    answer: MessageResponse | None = None
    error: GatewayError | None = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                answer = create_message(
                    workspace=workspace,
                    user=request.user,
                    model=form.cleaned_data["model"],
                    messages=[{"role": "user", "content": form.cleaned_data["prompt"]}],
                    max_tokens=form.cleaned_data["max_tokens"],
                    system=form.cleaned_data["system"] or None,
                )
            except GatewayError as exc:
                error, status = exc, exc.http_status
        else:
            status = 400
    return render(
        request,
        "ai_gateway/playground.html",
        {
            "form": form,
            "answer": answer,
            "answer_text": _text_of(answer.body) if answer else "",
            "error": error,
            "next_credentials": credentials_next(workspace=workspace),
        },
        status=status,
    )


def _text_of(body: dict[str, Any]) -> str:
    return "".join(
        block.get("text", "") for block in body.get("content") or [] if isinstance(block, dict)
    )
