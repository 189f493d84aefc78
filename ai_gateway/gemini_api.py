"""The Gemini-compatible API (SPEC §18): ``genai.Client(api_key=<workspace API token>,
http_options=HttpOptions(base_url="<site>/gemini"))``, the official SDK unchanged.

``/gemini/{v1beta|v1}/models/{model}:{method}`` and ``GET /gemini/{v1beta|v1}/models``,
authenticated by a workspace API token in ``x-goog-api-key`` (or ``?key=``, as Google
accepts). Answers and stream events are Google's bytes; the gateway adds
``x-credential-source`` and ``x-credits-charged``. Errors are ``google.rpc.Status`` JSON
(``ai_gateway.provider_errors``).
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
from .provider_errors import gemini_error_response, gemini_stream_error
from .relay import (
    METERED,
    relay_answer,
    relay_credentials,
    relay_free,
    relayed_response,
)

PROVIDER = Provider.GEMINI
METHODS = frozenset(
    ("generateContent", "streamGenerateContent", "countTokens", "embedContent",
     "batchEmbedContents")
)  # fmt: skip
TOKEN_MISSING = (
    "Send a workspace API token in the x-goog-api-key header (the google-genai SDK's "
    "api_key). Workspace admins create tokens at Workspace Settings → API tokens."
)
TOKEN_REFUSED = (
    "API key not valid: this workspace API token is mistyped, revoked, or its workspace is "
    "gone. Ask a workspace admin for a new one at Workspace Settings → API tokens."
)
BODY_FORM = (
    "The body must be a JSON object, as the Gemini API takes it: "
    '{"contents": [{"parts": [{"text": ...}]}]}.'
)
LIST_PARAMS = ("pageSize", "pageToken")
GOOGLE_JSON = "application/json; charset=UTF-8"


def _token_of(request: HttpRequest) -> ApiToken:
    return early_token(request) or token_of_headers(request.headers, request.GET)


@sensitive_variables("raw_token")
def token_of_headers(headers, params) -> ApiToken:
    """The live API token of these request headers (or ``?key=``), or a refusal in Google's
    terms (also called by config.request_guard before the body is read)."""
    raw_token = headers.get("x-goog-api-key", "").strip() or params.get("key", "")
    if not raw_token:
        # Google answers a request without a key 403 PERMISSION_DENIED.
        raise refused(403, "permission_denied", TOKEN_MISSING)
    token = api_token_authenticate(raw_token=raw_token)
    if token is None:
        # Google answers a bad key 400 with reason API_KEY_INVALID (its SDKs know it so).
        raise refused(400, "api_key_invalid", TOKEN_REFUSED)
    return token


_admitted = token_admitted(_token_of, gemini_error_response)


@csrf_exempt
async def model_method(request: HttpRequest, version: str, model: str, method: str):
    """``POST /gemini/{version}/models/{model}:{method}``."""
    if method not in METHODS:
        return not_found(request, f"{version}/models/{model}:{method}")
    if request.method != "POST":
        return _method_not_allowed("POST")
    return await _model_method(request, version=version, model=model, method=method)


@_admitted
async def _model_method(
    request: HttpRequest, token: ApiToken, *, version: str, model: str, method: str
) -> HttpResponse:
    stream = method == "streamGenerateContent"
    try:
        if stream and request.GET.get("alt") != "sse":
            raise refused(
                400,
                "invalid_argument",
                "This gateway streams as server-sent events only: call "
                ":streamGenerateContent?alt=sse (the google-genai SDK does).",
            )
        body = await aread_json_body(request, form=BODY_FORM)
        relay = RelayRequest(operation=method, body=body, model=model, api_version=version)
        if method not in METERED[PROVIDER]:
            credentials = await database_section(relay_credentials)(
                workspace=token.workspace, provider=PROVIDER
            )
            result = await relay_free(credentials, provider=PROVIDER, request=relay)
            return relayed_response(
                result, source=credentials.source, charged=0, content_type=GOOGLE_JSON
            )
        return await relay_answer(
            relay,
            workspace=token.workspace,
            api_token=token,
            provider=PROVIDER,
            stream=stream,
            error_event=gemini_stream_error,
            content_type=GOOGLE_JSON,
        )
    except GatewayError as error:
        return gemini_error_response(error)


@_admitted
async def models(request: HttpRequest, token: ApiToken, version: str) -> HttpResponse:
    """``GET /gemini/{version}/models`` (``pageSize``, ``pageToken``)."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        credentials = await database_section(relay_credentials)(
            workspace=token.workspace, provider=PROVIDER
        )
        params = {name: request.GET[name] for name in LIST_PARAMS if name in request.GET}
        result = await relay_free(
            credentials,
            provider=PROVIDER,
            request=RelayRequest(operation="models.list", params=params, api_version=version),
        )
    except GatewayError as error:
        return gemini_error_response(error)
    return relayed_response(result, source=credentials.source, charged=0, content_type=GOOGLE_JSON)


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other path under ``/gemini``: Google's 404 ``NOT_FOUND``."""
    return gemini_error_response(
        refused(
            404,
            "not_found",
            f"There is no {request.method} /gemini/{path}. This gateway serves "
            "/{v1beta|v1}/models/{model}:generateContent, :streamGenerateContent?alt=sse, "
            ":countTokens, :embedContent, :batchEmbedContents and GET /{v1beta|v1}/models.",
        )
    )


def _method_not_allowed(allowed: str) -> HttpResponse:
    response = gemini_error_response(
        refused(405, "method_not_allowed", f"Use {allowed} for this endpoint.")
    )
    response["Allow"] = allowed
    return response
