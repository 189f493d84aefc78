"""The OpenAI-compatible API (SPEC §18): ``OpenAI(base_url="<site>/openai/v1",
api_key=<workspace API token>)``, the official SDK unchanged.

Authenticated by a workspace API token in ``Authorization: Bearer``. Answers and stream
events are OpenAI's bytes; the gateway adds ``x-credential-source`` and
``x-credits-charged``. Errors are in OpenAI's shape (``ai_gateway.provider_errors``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from api_tokens.models import ApiToken
from api_tokens.services import api_token_authenticate
from llm_keys.models import Provider
from providers import RelayRequest

from .api import aread_json_body, early_token, refused
from .database import database_section
from .errors import GatewayError
from .limits import token_admitted
from .provider_errors import (
    openai_error_response,
    openai_stream_error,
    responses_stream_error,
)
from .relay import (
    relay_answer,
    relay_credentials,
    relay_free,
    relayed_response,
)

PROVIDER = Provider.OPENAI
TOKEN_MISSING = (
    "Send a workspace API token as Authorization: Bearer <token> (the OpenAI SDK's api_key). "
    "Workspace admins create tokens at Workspace Settings → API tokens."
)
TOKEN_REFUSED = (
    "This API token is not valid: it is mistyped, revoked, or its workspace is gone. "
    "Ask a workspace admin for a new one at Workspace Settings → API tokens."
)
BODY_FORM = (
    "The body must be a JSON object, as OpenAI's API takes it: "
    '{"model": ..., "messages": [...]} for chat completions, {"model": ..., "input": ...} '
    "for responses and embeddings."
)
# OpenAI's own request headers worth passing on; credentials never are.
PASSED_ON_HEADERS = ("openai-beta",)


def _token_of(request: HttpRequest) -> ApiToken:
    return early_token(request) or token_of_headers(request.headers, request.GET)


@sensitive_variables("raw_token")
def token_of_headers(headers, params) -> ApiToken:
    """The live API token of these request headers, or a refusal in OpenAI's terms (also
    called by config.request_guard before the body is read)."""
    scheme, _, raw_token = headers.get("authorization", "").partition(" ")
    raw_token = raw_token.strip() if scheme.lower() == "bearer" else ""
    if not raw_token:
        raise refused(401, "missing_api_key", TOKEN_MISSING)
    token = api_token_authenticate(raw_token=raw_token)
    if token is None:
        raise refused(401, "invalid_api_key", TOKEN_REFUSED)
    return token


_admitted = token_admitted(_token_of, openai_error_response)


def _passed_on_headers(request: HttpRequest) -> dict[str, str]:
    return {name: request.headers[name] for name in PASSED_ON_HEADERS if name in request.headers}


async def _metered(request: HttpRequest, token: ApiToken, operation: str) -> HttpResponse:
    if request.method != "POST":
        return _method_not_allowed("POST")
    try:
        body = await aread_json_body(request, form=BODY_FORM)
        stream = body.get("stream") is True and operation != "embeddings"
        relay = RelayRequest(operation=operation, body=body, headers=_passed_on_headers(request))
        return await relay_answer(
            relay,
            workspace=token.workspace,
            api_token=token,
            provider=PROVIDER,
            stream=stream,
            error_event=responses_stream_error if operation == "responses" else openai_stream_error,
        )
    except GatewayError as error:
        return openai_error_response(error)


@_admitted
async def chat_completions(request: HttpRequest, token: ApiToken) -> HttpResponse:
    """``POST /openai/v1/chat/completions``, plain and ``"stream": true``."""
    return await _metered(request, token, "chat.completions")


@_admitted
async def responses(request: HttpRequest, token: ApiToken) -> HttpResponse:
    """``POST /openai/v1/responses``, plain and ``"stream": true``."""
    return await _metered(request, token, "responses")


@_admitted
async def embeddings(request: HttpRequest, token: ApiToken) -> HttpResponse:
    """``POST /openai/v1/embeddings``."""
    return await _metered(request, token, "embeddings")


@_admitted
async def models(request: HttpRequest, token: ApiToken) -> HttpResponse:
    """``GET /openai/v1/models``: the models the request's credentials can use."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        credentials = await database_section(relay_credentials)(
            workspace=token.workspace, provider=PROVIDER
        )
        result = await relay_free(
            credentials,
            provider=PROVIDER,
            request=RelayRequest(operation="models.list", headers=_passed_on_headers(request)),
        )
    except GatewayError as error:
        return openai_error_response(error)
    return relayed_response(result, source=credentials.source, charged=0)


@csrf_exempt
async def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other path under ``/openai``: a 404 in OpenAI's shape."""
    return openai_error_response(
        refused(
            404,
            "unknown_url",
            f"Unknown request URL: {request.method} /openai/{path}. This gateway serves "
            "/v1/chat/completions, /v1/responses, /v1/embeddings and /v1/models.",
        )
    )


def _method_not_allowed(allowed: str) -> HttpResponse:
    response = openai_error_response(
        refused(405, "method_not_allowed", f"Use {allowed} for this endpoint.")
    )
    response["Allow"] = allowed
    return response
