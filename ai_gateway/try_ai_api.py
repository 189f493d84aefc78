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

from llm_keys.access import MemberContext
from llm_keys.models import Provider
from providers import MessageStream, RelayRequest

from .api import aread_json_body, error_response, refused
from .errors import GatewayError
from .relay import relay_answer
from .services import sse_error
from .views import session_api

GEMINI_METHODS = frozenset(("generateContent", "streamGenerateContent"))


def _session_error_event(error: GatewayError, stream: MessageStream) -> bytes:
    """An early end, as the session API tells it (``event: error``, its JSON error)."""
    return sse_error(error)


async def _relayed(
    request: HttpRequest,
    member: MemberContext,
    provider: str,
    relay_of: Callable[[dict[str, Any]], RelayRequest],
) -> HttpResponse:
    """Send the body's request to ``provider`` (the session was checked, the request
    admitted: ``session_api``)."""
    try:
        relay = relay_of(await aread_json_body(request))
        stream = relay.operation == "streamGenerateContent" or relay.body.get("stream") is True
        return await relay_answer(
            relay,
            workspace=member.workspace,
            user=request.user,
            provider=provider,
            stream=stream,
            error_event=_session_error_event,
            trailer=True,
        )
    except GatewayError as error:
        return error_response(error)


@session_api
async def openai_chat(request: HttpRequest, member: MemberContext) -> HttpResponse:
    """``POST /api/v1/w/<slug>/openai/chat/completions``: OpenAI's chat completions."""
    return await _relayed(
        request,
        member,
        Provider.OPENAI,
        lambda body: RelayRequest(operation="chat.completions", body=body),
    )


@session_api
async def gemini_generate(
    request: HttpRequest, member: MemberContext, model: str, method: str
) -> HttpResponse:
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
        member,
        Provider.GEMINI,
        lambda body: RelayRequest(operation=method, body=body, model=model, api_version="v1beta"),
    )
