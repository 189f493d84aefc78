"""AI requests to a provider's own API (``/openai``, ``/gemini``), through the same request
lifecycle as Anthropic's (``AICall``: resolve, reserve, send, end) — docs/decisions/146.

The adapter relays the client's JSON whole (``RelayRequest``); this module adds only what
the gateway itself needs: which credentials pay, what a credit-paid request reserves before
it is sent (its input bound and every output token it may produce), and the usage to charge
when the provider reports none (Gemini's embeddings).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.debug import sensitive_variables

from credits import pricing
from credits.exceptions import ConcurrencyLimitError as LedgerConcurrencyError
from credits.exceptions import InsufficientCreditsError as LedgerInsufficientError
from credits.exceptions import MemberCreditLimitError as LedgerMemberLimitError
from llm_keys.models import Provider
from providers import (
    KeyRejectedError,
    MessageResult,
    MessageStream,
    ProviderError,
    RelayRequest,
    Usage,
    get_adapter,
)
from workspaces.echo import shown

from .api import relay_headers, stream_response
from .database import database_section
from .errors import (
    BadRequestError,
    ConcurrencyLimitedError,
    CreditsRefusedError,
    GatewayError,
    MemberLimitRefusedError,
    ProviderFailedError,
)
from .models import CredentialSource
from .services import (
    MAX_MODEL_NAME,
    PLATFORM_KEY_SETTINGS,
    AICall,
    Credentials,
    GatewayStream,
    _background,
    _finish_abandoned,
    call_aborted,
    call_succeeded,
    credentials_resolve,
    key_rejected,
    relayed_headers,
)

# The operations that produce billed tokens; the others (model lists, countTokens) are free.
METERED = {
    Provider.OPENAI: frozenset(("chat.completions", "responses", "embeddings")),
    Provider.GEMINI: frozenset(
        ("generateContent", "streamGenerateContent", "embedContent", "batchEmbedContents")
    ),
}
EMBEDDINGS = frozenset(("embeddings", "embedContent", "batchEmbedContents"))
# Google reports no usage for embeddings; bill what covers its count: one token per three
# UTF-8 bytes of text (Google's own rule of thumb is four characters a token,
# https://ai.google.dev/gemini-api/docs/tokens).
BYTES_PER_EMBEDDING_TOKEN = 3
# Tools the client runs itself are billed as tokens; a hosted tool (web search, file search,
# code interpreter, Google Search grounding) bills per use, which the price table does not
# carry yet: refused on credits (decision 148).
TOKEN_ONLY_OPENAI_TOOLS = frozenset(("function", "custom"))
TOKEN_ONLY_GEMINI_TOOLS = frozenset(("functionDeclarations", "function_declarations"))
STANDARD_OPENAI_TIERS = frozenset(("auto", "default"))


def provider_name(provider: str) -> str:
    return Provider(provider).label


def relay_credentials(*, workspace, provider: str) -> Credentials:
    """Return the credentials for a request to ``provider`` that charges nothing (lists,
    token counts), or raise why there are none."""
    return credentials_resolve(workspace=workspace, provider=provider)


def relay_begin(
    *,
    workspace: Any,
    provider: str,
    request: RelayRequest,
    stream: bool,
    api_token: Any = None,
    user: Any = None,
) -> AICall:
    """Resolve the credentials for ``provider`` and, on credits, price and reserve the
    request (a member's, on Try AI, within their monthly limit; a program's with its API
    token). Raise a GatewayError, with its usage row written, if it cannot go out."""
    body = request.body or {}
    model = request.model if request.model is not None else body.get("model")
    call = AICall(
        workspace=workspace,
        user=user,
        provider=provider,
        model=model if isinstance(model, str) else "",
        stream=stream,
        started=time.perf_counter(),
        api_token=api_token,
    )
    try:
        credentials = credentials_resolve(workspace=workspace, provider=provider)
    except GatewayError as error:
        raise call.refuse(error) from None
    call.source, call.credentials = credentials.source, credentials
    try:
        if not isinstance(model, str) or not model.strip():
            raise BadRequestError("'model' is required.")
        if len(model) > MAX_MODEL_NAME:
            raise BadRequestError(f"'model' is too long (at most {MAX_MODEL_NAME} characters).")
        if credentials.source != CredentialSource.PLATFORM:
            return call
        price = pricing.get_price(model)
        if price is None:
            raise BadRequestError(
                f"The model {shown(model)} is not available with AI credits for "
                f"{provider_name(provider)}. It works with the workspace's own "
                f"{provider_name(provider)} key (Workspace Settings → LLM Key)."
            )
        unpriced = unpriced_features(provider, body)
        if unpriced:
            raise BadRequestError(
                f"This request uses {', '.join(unpriced)}, which AI credits cannot pay for "
                f"yet, so it was not sent to {provider_name(provider)}. It works with the "
                f"workspace's own {provider_name(provider)} key (Workspace Settings → LLM Key)."
            )
    except BadRequestError as error:
        raise call.refuse(error) from None
    input_bound = input_tokens_bound(body)
    output_bound = (
        0 if request.operation in EMBEDDINGS else output_tokens_bound(provider, body, price)
    )
    call.price = price
    call.worst = pricing.max_cost(price, input_tokens=input_bound, max_tokens=output_bound)
    # Reasoning tokens are billed but never streamed: a stream cut early is read on to its
    # final usage, or charged its reservation (decision 103).
    call.hidden_work = True
    first = call.worst
    if stream:
        allowance = min(output_bound, settings.AI_FIRST_OUTPUT_TOKENS)
        first = min(
            call.worst,
            max(1, pricing.max_cost(price, input_tokens=input_bound, max_tokens=allowance)),
        )
    _reserve(call, amount=first)
    return call


def input_tokens_bound(body: Mapping[str, Any]) -> int:
    """At most one token per byte of the request's JSON: no tokenizer makes more tokens than
    UTF-8 bytes of text, and images or audio sent inline cost far fewer tokens than their
    base64 bytes."""
    return max(1, len(json.dumps(body, ensure_ascii=False).encode()))


def _whole(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def output_tokens_bound(provider: str, body: Mapping[str, Any], price: pricing.ModelPrice) -> int:
    """Every output token the request may be billed for, reasoning included: the limit it
    sets (the model's own when it sets none) times the answers it asks for."""
    if provider == Provider.GEMINI:
        config = body.get("generationConfig") or body.get("generation_config") or {}
        if not isinstance(config, Mapping):
            config = {}
        limit = _whole(config.get("maxOutputTokens") or config.get("max_output_tokens"))
        answers = _whole(config.get("candidateCount") or config.get("candidate_count")) or 1
    else:
        limit = _whole(
            body.get("max_completion_tokens")
            or body.get("max_output_tokens")
            or body.get("max_tokens")
        )
        answers = _whole(body.get("n")) or 1
    per_answer = min(limit or price.max_output_tokens, price.max_output_tokens)
    return per_answer * answers


def unpriced_features(provider: str, body: Mapping[str, Any]) -> list[str]:
    """Name what in the request bills beyond tokens, which the price table cannot charge."""
    found = []
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, Mapping):
            continue
        if provider == Provider.OPENAI:
            kind = tool.get("type")
            if kind not in TOKEN_ONLY_OPENAI_TOOLS:
                found.append(f"tool type {shown(str(kind))}")
        else:
            found.extend(
                f"tool {shown(str(name))}" for name in tool if name not in TOKEN_ONLY_GEMINI_TOOLS
            )
    if provider == Provider.GEMINI:
        found.extend(_gemini_unpriced_media(body))
    else:
        found.extend(_openai_unpriced_media(body))
    tier = body.get("service_tier")
    if provider == Provider.OPENAI and tier is not None and tier not in STANDARD_OPENAI_TIERS:
        found.append(f"service_tier {shown(str(tier))}")
    return list(dict.fromkeys(found))


def _gemini_unpriced_media(body: Mapping[str, Any]) -> list[str]:
    """Audio input, and audio or image output: Google bills them at their own rates
    (ai.google.dev/gemini-api/docs/pricing), which the price table does not carry."""
    found = []
    if any(str(mime).startswith("audio/") for mime in _gemini_mime_types(body.get("contents"))):
        found.append("audio input")
    config = body.get("generationConfig") or body.get("generation_config") or {}
    modalities = config.get("responseModalities") or config.get("response_modalities") or []
    for modality in (
        modalities if isinstance(config, Mapping) and isinstance(modalities, list) else ()
    ):
        if str(modality).upper() in ("AUDIO", "IMAGE"):
            found.append(f"{str(modality).lower()} output")
    return found


def _openai_unpriced_media(body: Mapping[str, Any]) -> list[str]:
    """Audio in or out: OpenAI bills audio tokens at their own rates
    (platform.openai.com/docs/pricing), which the price table does not carry."""
    found = []
    if _has_part(body.get("messages"), "input_audio") or _has_part(
        body.get("input"), "input_audio"
    ):
        found.append("audio input")
    modalities = body.get("modalities")
    if body.get("audio") is not None or (isinstance(modalities, list) and "audio" in modalities):
        found.append("audio output")
    return found


def _has_part(messages: Any, kind: str) -> bool:
    """Whether a chat message or Responses input item has a content part of ``kind``."""
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, Mapping) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, Mapping) and part.get("type") == kind:
                return True
    return False


def _gemini_mime_types(contents: Any) -> list[Any]:
    found = []
    for content in contents if isinstance(contents, list) else [contents]:
        parts = content.get("parts") if isinstance(content, Mapping) else None
        for part in parts if isinstance(parts, list) else ():
            for name in ("inlineData", "inline_data", "fileData", "file_data"):
                data = part.get(name) if isinstance(part, Mapping) else None
                if isinstance(data, Mapping):
                    found.append(data.get("mimeType") or data.get("mime_type") or "")
    return found


def _reserve(call: AICall, *, amount: int) -> None:
    name = provider_name(call.provider)
    try:
        call.reserve(amount)
    except LedgerConcurrencyError as exc:
        raise call.refuse(ConcurrencyLimitedError(str(exc))) from None
    except LedgerMemberLimitError as exc:
        raise call.refuse(MemberLimitRefusedError(str(exc))) from None
    except LedgerInsufficientError as exc:
        raise call.refuse(
            CreditsRefusedError(
                f"Not enough AI credits: this request needs {amount:,} credits set aside and "
                f"the workspace has {exc.balance:,}. Lower the output limit or shorten the "
                f"input; ask a workspace admin to add credits, or save your own {name} key "
                "in Workspace Settings → LLM Key."
            )
        ) from None


def relay_failed(call: AICall, error: ProviderError) -> GatewayError:
    """The provider refused or could not be reached: release the reservation, mark a
    refused workspace key invalid, write the usage row; return the error to answer."""
    return call.refuse(
        provider_failure(error, provider=call.provider, credentials=call.credentials)
    )


def provider_failure(
    error: ProviderError, *, provider: str, credentials: Credentials | None
) -> GatewayError:
    """The error to answer for a provider's refusal (the key's refusal marks it invalid)."""
    source = credentials.source if credentials else CredentialSource.NONE
    if isinstance(error, KeyRejectedError):
        if source == CredentialSource.BYOK:
            return key_rejected(credentials.llm_key, error)
        return ProviderFailedError(
            f"The platform's {provider_name(provider)} credentials were refused; operators "
            f"must fix {PLATFORM_KEY_SETTINGS[provider]}. Nothing was charged.",
            error_type="platform_credentials_rejected",
            http_status=503,
            provider_error_type=error.provider_error_type,
            request_id=error.request_id or "",
        )
    status = error.status_code if error.status_code and error.status_code >= 400 else None
    return ProviderFailedError(
        f"{error.message} Nothing was charged.",
        error_type=error.error_type,
        http_status=status or error.http_status,
        provider_error_type=error.provider_error_type,
        request_id=error.request_id or "",
        retry_headers=error.retry_headers,
    )


def embedding_usage(request: RelayRequest) -> Usage:
    """Gemini's embeddings report no usage: the bound of their text's tokens."""
    texts: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if key in ("text", "parts", "content", "requests", "contents"):
                    collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(request.body or {})
    size = sum(len(text.encode()) for text in texts)
    return Usage(input_tokens=max(1, -(-size // BYTES_PER_EMBEDDING_TOKEN)))


async def _sent(adapter: Any, call: AICall, request: RelayRequest) -> MessageResult:
    result = await adapter.asend(api_key=call.credentials.api_key, request=request)
    if call.provider == Provider.GEMINI and request.operation in EMBEDDINGS:
        result = dataclasses.replace(result, usage=embedding_usage(request))
    return result


@sensitive_variables("call")
async def relay_send(call: AICall, request: RelayRequest) -> tuple[MessageResult, int]:
    """Send a begun request; end it (charge, usage row). Return the answer and its charge."""
    adapter = get_adapter(call.provider)
    sent = asyncio.ensure_future(_sent(adapter, call, request))
    try:
        result = await asyncio.shield(sent)
    except ProviderError as error:
        raise await database_section(relay_failed)(call, error) from None
    except asyncio.CancelledError:
        # The client left: the provider still answers and bills; charge its answer.
        _background(_finish_abandoned(call, sent))
        raise
    except BaseException:
        await asyncio.shield(database_section(call_aborted)(call))
        raise
    _, charged = await database_section(call_succeeded)(
        call, usage=result.usage, request_id=result.request_id
    )
    return result, charged


@sensitive_variables("call")
async def relay_stream(
    call: AICall,
    request: RelayRequest,
    *,
    error_event: Callable[[GatewayError, MessageStream], bytes],
    trailer: bool = False,
) -> GatewayStream:
    """Open a begun request's stream; a refusal raises before any byte is relayed. An early
    end (credits, the stream cap, the provider broke off) is told by ``error_event`` (given
    the error and the provider's stream), in the provider's own stream shape; ``trailer``
    ends it with the gateway's ``gateway`` event (Try AI's session API)."""
    adapter = get_adapter(call.provider)
    try:
        stream = await adapter.astream(api_key=call.credentials.api_key, request=request)
    except ProviderError as error:
        raise await database_section(relay_failed)(call, error) from None
    except BaseException:
        await asyncio.shield(database_section(call_aborted)(call))
        raise
    return GatewayStream(
        call,
        stream,
        trailer=trailer,
        error_event=lambda error: error_event(error, stream),
        credits_ran_out=credits_ran_out_message(call.provider),
    )


async def relay_answer(
    request: RelayRequest,
    *,
    workspace: Any,
    provider: str,
    stream: bool,
    error_event: Callable[[GatewayError, MessageStream], bytes],
    api_token: Any = None,
    user: Any = None,
    trailer: bool = False,
    content_type: str = "application/json",
) -> HttpResponse:
    """Begin a metered request (``relay_begin``, in a database section), send it and answer
    with what the provider sent: its stream (``relay_stream``) or its answer
    (``relay_send``, ``relayed_response``)."""
    call = await database_section(relay_begin)(
        workspace=workspace,
        api_token=api_token,
        user=user,
        provider=provider,
        request=request,
        stream=stream,
    )
    if stream:
        return stream_response(
            await relay_stream(call, request, error_event=error_event, trailer=trailer)
        )
    result, charged = await relay_send(call, request)
    return relayed_response(result, source=call.source, charged=charged, content_type=content_type)


def credits_ran_out_message(provider: str) -> str:
    return (
        "The workspace's AI credits ran out during this answer, so it was stopped here; what "
        "was produced is charged. Ask a workspace admin to add credits (support grants them; "
        f"the monthly allowance adds more), or save your own {provider_name(provider)} key in "
        "Workspace Settings → LLM Key."
    )


@sensitive_variables("credentials")
async def relay_free(
    credentials: Credentials, *, provider: str, request: RelayRequest
) -> MessageResult:
    """Send a request that charges nothing and writes no usage row (lists, token counts)."""
    try:
        return await get_adapter(provider).asend(api_key=credentials.api_key, request=request)
    except ProviderError as error:
        if isinstance(error, KeyRejectedError) and credentials.llm_key is not None:
            # The workspace's key was refused: it is invalid, as on an AI request (SPEC §6).
            raise await database_section(provider_failure)(
                error, provider=provider, credentials=credentials
            ) from None
        raise provider_failure(error, provider=provider, credentials=credentials) from None


def relayed_response(
    result: MessageResult,
    *,
    source: str,
    charged: int,
    content_type: str = "application/json",
) -> HttpResponse:
    """The provider's answer as it sent it, with its headers the gateway passes on and the
    gateway's own: who paid and the credits charged."""
    response = relay_headers(
        HttpResponse(result.content, content_type=content_type),
        relayed_headers(source, result.headers),
    )
    response["x-credential-source"] = str(source)
    response["x-credits-charged"] = str(charged)
    return response
