"""Try AI with OpenAI and Gemini models (docs/decisions/150).

The page's script sends each provider's own request body, on the member's session, to

- ``POST /api/v1/w/<slug>/openai/chat/completions`` (OpenAI's chat completions), and
- ``POST /api/v1/w/<slug>/gemini/models/<model>:generateContent`` or
  ``:streamGenerateContent`` (Gemini's),

which go through the same request lifecycle as the provider endpoints (``relay_begin``:
credentials for that provider, the member's monthly limit, the reservation; the usage row
with the provider). A stream's events are the provider's, then the gateway's closing
``gateway`` event with who paid and the credits charged, as on the Anthropic session API;
refusals are the session API's JSON errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from llm_keys.models import Provider
from providers import MessageStream, RelayRequest

from .api import aread_json_body, error_response, refused, stream_response
from .database import database_section
from .errors import GatewayError
from .relay import relay_begin, relay_send, relay_stream, relayed_response
from .services import sse_error
from .views import _session_member

GEMINI_METHODS = frozenset(("generateContent", "streamGenerateContent"))


def _session_error_event(error: GatewayError, stream: MessageStream) -> bytes:
    """An early end, as the session API tells it (``event: error``, its JSON error)."""
    return sse_error(error)


async def _relayed(
    request: HttpRequest,
    slug: str,
    provider: str,
    relay_of: Callable[[dict[str, Any]], RelayRequest],
) -> HttpResponse:
    """Check the session (before the body is read), then send the body's request."""
    if request.method != "POST":
        response = error_response(refused(405, "invalid_request_error", "Use POST."))
        response["Allow"] = "POST"
        return response
    try:
        member = await database_section(_session_member)(request, slug)
        if isinstance(member, HttpResponse):
            return member
        relay = relay_of(await aread_json_body(request))
        stream = relay.operation == "streamGenerateContent" or relay.body.get("stream") is True
        call = await database_section(relay_begin)(
            workspace=member.workspace,
            user=request.user,
            provider=provider,
            request=relay,
            stream=stream,
        )
        if stream:
            return stream_response(
                await relay_stream(call, relay, error_event=_session_error_event, trailer=True)
            )
        result, charged = await relay_send(call, relay)
    except GatewayError as error:
        return error_response(error)
    return relayed_response(result, source=call.source, charged=charged)


@csrf_exempt  # checked inside, after authentication, so every refusal is JSON
async def openai_chat(request: HttpRequest, slug: str) -> HttpResponse:
    """``POST /api/v1/w/<slug>/openai/chat/completions``: OpenAI's chat completions."""
    return await _relayed(
        request,
        slug,
        Provider.OPENAI,
        lambda body: RelayRequest(operation="chat.completions", body=body),
    )


@csrf_exempt  # checked inside, after authentication, so every refusal is JSON
async def gemini_generate(request: HttpRequest, slug: str, model: str, method: str):
    """``POST /api/v1/w/<slug>/gemini/models/<model>:generateContent`` or
    ``:streamGenerateContent``: Gemini's."""
    if method not in GEMINI_METHODS:
        return error_response(
            refused(
                404, "not_found_error", "Try AI sends generateContent or streamGenerateContent."
            )
        )
    return await _relayed(
        request,
        slug,
        Provider.GEMINI,
        lambda body: RelayRequest(operation=method, body=body, model=model, api_version="v1beta"),
    )
