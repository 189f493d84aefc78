"""The Anthropic-compatible API (SPEC §13): programs call the gateway as they would call
Anthropic, with the official SDKs unchanged —
``Anthropic(base_url="<site>/anthropic", api_key=<workspace API token>)``.

Authenticated by a workspace API token in ``x-api-key`` or ``Authorization: Bearer``; no
cookies, no CSRF. Answers and stream events are the provider's, unchanged; the gateway adds
``x-credential-source`` and, when known, ``x-credits-charged``. Errors use Anthropic's
envelope with the statuses the SDKs map to their own exception classes.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from api_tokens.models import ApiToken
from api_tokens.services import api_token_authenticate
from llm_keys.models import Provider
from llm_keys.services import llm_key_passthrough_audit
from providers import KeyRejectedError, ProviderError, get_adapter

from .api import (
    aread_json_body,
    early_token,
    error_response,
    passed_on_headers,
    read_raw_body,
    refused,
    relay_headers,
    stream_response,
)
from .database import database_section
from .errors import GatewayError
from .limits import token_admitted
from .request_ids import current_request_id
from .services import (
    AICall,
    Credentials,
    acreate_message,
    astream_message,
    call_begin,
    credentials_resolve,
    key_rejected,
    provider_failed,
    relayed_headers,
)

logger = logging.getLogger(__name__)

TOKEN_MISSING = (
    "Send a workspace API token in the x-api-key header (or Authorization: Bearer). "
    "Workspace admins create tokens at Workspace Settings → API tokens."
)
TOKEN_REFUSED = (
    "This API token is not valid: it is mistyped, revoked, or its workspace is gone. "
    "Ask a workspace admin for a new one at Workspace Settings → API tokens."
)


def _token_of(request: HttpRequest) -> ApiToken:
    """The request's live API token, or a 401 in Anthropic's envelope."""
    return early_token(request) or token_of_headers(request.headers, request.GET)


@sensitive_variables("raw_token")
def token_of_headers(headers, params) -> ApiToken:
    """The live API token of these request headers, or a 401 in Anthropic's envelope (also
    called by config.request_guard before the body is read)."""
    raw_token = headers.get("x-api-key", "")
    if not raw_token:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            raw_token = credentials.strip()
    if not raw_token:
        raise refused(401, "authentication_error", TOKEN_MISSING)
    token = api_token_authenticate(raw_token=raw_token)
    if token is None:
        raise refused(401, "authentication_error", TOKEN_REFUSED)
    return token


_admitted = token_admitted(_token_of, error_response)


async def _messages_begin(request: HttpRequest, token: ApiToken) -> tuple[AICall, dict[str, Any]]:
    # The token first: nobody's body is parsed before they are known.
    body = await aread_json_body(request)
    call = await database_section(call_begin)(
        workspace=token.workspace,
        user=None,
        body=body,
        api_token=token,
        headers=passed_on_headers(request),
    )
    return call, body


def _credentials_of_token(token: ApiToken) -> Credentials:
    return credentials_resolve(workspace=token.workspace)


@_admitted
async def messages(request: HttpRequest, token: ApiToken) -> HttpResponse:
    """``POST /anthropic/v1/messages``, plain and ``"stream": true``."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    try:
        call, body = await _messages_begin(request, token)
        headers = passed_on_headers(request)
        if call.stream:
            stream = await astream_message(call, body=body, headers=headers, trailer=False)
            return stream_response(stream)
        result = await acreate_message(call, body=body, headers=headers)
    except GatewayError as error:
        return error_response(error)
    response = relay_headers(
        HttpResponse(result.result.content, content_type="application/json"),
        relayed_headers(call.source, result.result.headers),
    )
    response["x-credential-source"] = str(result.credential_source)
    response["x-credits-charged"] = str(result.credits_charged)
    return response


@_admitted
async def count_tokens(request: HttpRequest, token: ApiToken) -> HttpResponse:
    """``POST /anthropic/v1/messages/count_tokens``: the provider counts, nothing is charged."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    try:
        credentials = await database_section(_credentials_of_token)(token)
        body = await aread_json_body(request)
        result = await _provider_call(
            credentials,
            lambda adapter: adapter.acount_tokens(
                api_key=credentials.api_key, body=body, headers=passed_on_headers(request)
            ),
        )
    except GatewayError as error:
        return error_response(error)
    response = HttpResponse(result.content, content_type="application/json")
    return _passed_on(response, credentials, result.headers)


@_admitted
async def models(request: HttpRequest, token: ApiToken) -> HttpResponse:
    """``GET /anthropic/v1/models``: the models the request's credentials can use."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        credentials = await database_section(_credentials_of_token)(token)
        result = await _provider_call(
            credentials,
            lambda adapter: adapter.alist_models(
                api_key=credentials.api_key,
                params=request.GET.dict(),
                headers=passed_on_headers(request),
            ),
        )
    except GatewayError as error:
        return error_response(error)
    response = HttpResponse(result.content, content_type="application/json")
    return _passed_on(response, credentials, result.headers)


@_admitted
async def model(request: HttpRequest, token: ApiToken, model_id: str) -> HttpResponse:
    """``GET /anthropic/v1/models/{model_id}`` (the SDK's ``models.retrieve``)."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        credentials = await database_section(_credentials_of_token)(token)
        result = await _provider_call(
            credentials,
            lambda adapter: adapter.aretrieve_model(
                api_key=credentials.api_key,
                model_id=model_id,
                headers=passed_on_headers(request),
            ),
        )
    except GatewayError as error:
        return error_response(error)
    response = HttpResponse(result.content, content_type="application/json")
    return _passed_on(response, credentials, result.headers)


OWN_KEY_ONLY = (
    "Message Batches and Files work only with the workspace's own Anthropic key: Anthropic "
    "bills them to that key's account, not to AI credits. A workspace admin can save the "
    "key in Workspace Settings → LLM Key."
)
# The client's headers a Files upload or a batch needs besides the API's own.
RELAYED_REQUEST_HEADERS = ("content-type",)


@_admitted
async def own_key_passthrough(request: HttpRequest, token: ApiToken, path: str) -> HttpResponse:
    """Message Batches (``/v1/messages/batches…``) and Files (``/v1/files…``): passed
    through as they come on the workspace's own key, refused on AI credits (SPEC §17).

    The gateway does not price or read them: Anthropic bills them to the key's account.
    Each call sent with the key is audited (decision 125): which token, what, the answer.
    """
    try:
        credentials = await database_section(_credentials_of_token)(token)
        if credentials.llm_key is None:
            raise refused(403, "permission_error", OWN_KEY_ONLY)
        content = await sync_to_async(read_raw_body, thread_sensitive=False)(request)
    except GatewayError as error:
        return error_response(error)
    response = await _relayed_on_own_key(request, credentials, path, content)
    await database_section(llm_key_passthrough_audit)(
        llm_key=credentials.llm_key,
        token=token,
        call=f"{request.method} /v1/{path}",
        status=response.status_code,
        request_id=response.get("request-id") or current_request_id(),
    )
    return response


async def _relayed_on_own_key(
    request: HttpRequest, credentials: Credentials, path: str, content: bytes
) -> HttpResponse:
    headers = passed_on_headers(request)
    headers.update(
        {name: request.headers[name] for name in RELAYED_REQUEST_HEADERS if name in request.headers}
    )
    try:
        result = await _provider_call(
            credentials,
            lambda adapter: adapter.arelay(
                api_key=credentials.api_key,
                method=request.method,
                path=f"/v1/{path}",
                params=request.GET.dict(),
                content=content,
                headers=headers,
            ),
        )
    except GatewayError as error:
        return error_response(error)
    content_type = result.headers.pop("content-type", "application/json")
    response = HttpResponse(result.content, content_type=content_type)
    return _passed_on(response, credentials, result.headers)


@csrf_exempt
async def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other path under ``/anthropic``: Anthropic's own 404, in its envelope."""
    return error_response(
        refused(
            404,
            "not_found_error",
            f"There is no {request.method} /anthropic/{path} endpoint. This gateway serves "
            "/v1/messages, /v1/messages/count_tokens, /v1/models, and on a workspace's own "
            "key /v1/messages/batches and /v1/files.",
        )
    )


@sensitive_variables("credentials")
async def _provider_call(credentials: Credentials, send):
    try:
        return await send(get_adapter(Provider.ANTHROPIC))
    except KeyRejectedError as error:
        if credentials.llm_key is None:
            raise provider_failed(error, source=credentials.source) from None
        # The workspace's key was refused: it is invalid, as on an AI request (SPEC §6).
        raise await database_section(key_rejected)(credentials.llm_key, error) from None
    except ProviderError as error:
        raise provider_failed(error, source=credentials.source) from None


def _passed_on(response: HttpResponse, credentials: Credentials, headers) -> HttpResponse:
    relay_headers(response, relayed_headers(credentials.source, headers))
    response["x-credential-source"] = str(credentials.source)
    response["x-credits-charged"] = "0"
    return response


def _method_not_allowed(allowed: str) -> HttpResponse:
    response = error_response(refused(405, "invalid_request_error", f"Use {allowed}."))
    response["Allow"] = allowed
    return response
