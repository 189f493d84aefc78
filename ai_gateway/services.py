"""The AI gateway: the one entry point for every AI request of a workspace.

Per request it resolves the credentials (SPEC §7):

- the workspace has a key that is ``valid`` or ``unverified`` → that key, no credits;
- its key is ``invalid`` → refused at once, no provider call, never AI credits instead;
- its key cannot be decrypted → refused, status untouched (an operator's problem);
- no key → the platform key, paid with AI credits: hold the most the request can cost,
  settle the real usage after it, release everything on failure.

A request runs in three parts, and only the first and the last touch the database, each in
a short section of its own (``ai_gateway.database``), so that the provider call and an open
stream hold no database connection:

1. ``call_begin``: check the request, resolve the credentials, hold the credits;
2. the provider call (``providers``), sync for pages and Python callers, async for the API;
3. ``call_succeeded`` / ``call_failed`` / ``call_ended_early``: settle or release, and write
   the request's one ``AIRequest`` row.

``create_message`` runs all three for a caller in sync code; the API views run them around
the async provider calls (``acreate_message``, ``astream_message``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from credits import pricing
from credits import services as ledger
from credits.exceptions import InsufficientCreditsError as LedgerInsufficientError
from credits.exceptions import MemberCreditLimitError as LedgerMemberLimitError
from llm_keys.models import KeyStatus, LLMKey, Provider
from llm_keys.services import Actor, KeyUnreadableError, llm_key_decrypt, llm_key_record_check
from providers import (
    CheckOutcome,
    CheckResult,
    KeyRejectedError,
    MessageResult,
    MessageStream,
    ProviderError,
    Usage,
    get_adapter,
)
from workspaces.echo import shown
from workspaces.models import Workspace

from .database import database_section
from .errors import (
    BadRequestError,
    GatewayError,
    InsufficientCreditsError,
    LLMKeyInvalidError,
    LLMKeyRejectedError,
    LLMKeyUnreadableError,
    MemberCreditLimitError,
    PlatformNotConfiguredError,
    ProviderFailedError,
)
from .models import AIRequest, CredentialSource, Outcome
from .request_ids import current_request_id

logger = logging.getLogger(__name__)

KEY_INVALID_MESSAGE = (
    "Your Anthropic key is invalid; update it in Workspace Settings → LLM Key. "
    "AI requests of this workspace do not fall back to AI credits."
)
KEY_UNREADABLE_MESSAGE = (
    "This workspace's stored Anthropic key cannot be decrypted with the server's encryption "
    "keys (LLM_KEY_ENCRYPTION_KEYS). Operators: restore the key ring entry that wrote it, or "
    "have a workspace admin save the key again. Its status is unchanged; no AI credits were used."
)
MAX_MODEL_NAME = 100


@dataclass(frozen=True, slots=True)
class Credentials:
    """Which credentials pay for a request; ``api_key`` lives only for the request."""

    source: str
    api_key: str = field(repr=False)
    llm_key: LLMKey | None = None


@dataclass(slots=True)
class MessageResponse:
    """A finished, non-streamed AI request."""

    result: MessageResult
    credential_source: str
    credits_charged: int
    ai_request: AIRequest

    @property
    def body(self) -> dict[str, Any]:
        return self.result.body

    @property
    def usage(self) -> Usage:
        return self.result.usage

    def as_json(self) -> dict[str, Any]:
        """The provider's answer plus which credentials paid and what it cost (§7)."""
        return {
            **self.result.body,
            "credential_source": self.credential_source,
            "credits_charged": self.credits_charged,
        }


@dataclass(slots=True)
class AICall:
    """One AI request from begin to end: what its usage row is written from."""

    workspace: Workspace
    user: Any
    provider: str
    model: str
    stream: bool
    started: float
    source: str = CredentialSource.NONE
    credentials: Credentials | None = field(default=None, repr=False)
    price: pricing.ModelPrice | None = None
    hold: Any = None
    api_token: Any = None  # the workspace API token of a program's request

    def record(
        self,
        *,
        outcome: str,
        error: GatewayError | None = None,
        usage: Usage | None = None,
        request_id: str | None = None,
        credits_charged: int = 0,
    ) -> AIRequest:
        """Write the request's usage row and return it."""
        usage = usage or Usage()
        return AIRequest.objects.create(
            workspace=self.workspace,
            user=self.user if getattr(self.user, "pk", None) else None,
            api_token=self.api_token,
            provider=self.provider,
            model=self.model[:MAX_MODEL_NAME],
            credential_source=self.source,
            outcome=outcome,
            error_type=error.error_type if error else "",
            provider_error_type=(error.provider_error_type if error else "")[:64],
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            credits_charged=credits_charged,
            latency_ms=int((time.perf_counter() - self.started) * 1000),
            provider_request_id=(
                request_id or (error.request_id if error else "") or current_request_id()
            )[:100],
            stream=self.stream,
        )

    def release(self) -> None:
        if self.hold is not None:
            ledger.credits_release(hold=self.hold)
            self.hold = None

    def refuse(self, error: GatewayError, *, usage: Usage | None = None) -> GatewayError:
        """Release any hold, write the usage row, and return the error to raise."""
        self.release()
        self.record(outcome=error.outcome, error=error, usage=usage)
        return error

    def charge(
        self,
        *,
        usage: Usage,
        request_id: str | None,
        outcome: str = Outcome.OK,
        error: GatewayError | None = None,
    ) -> tuple[AIRequest, int]:
        """Settle what the provider produced (credits path) and write the usage row, together."""
        if self.hold is None:
            row = self.record(outcome=outcome, error=error, usage=usage, request_id=request_id)
            return row, 0
        cost = pricing.cost(self.price, usage)
        if outcome != Outcome.OK and cost == 0:
            # Nothing was produced before the stream ended: give the whole hold back.
            self.release()
            return self.record(outcome=outcome, error=error, usage=usage, request_id=request_id), 0
        try:
            with transaction.atomic():
                settlement = ledger.credits_settle(hold=self.hold, amount=cost)
                row = self.record(
                    outcome=outcome,
                    error=error,
                    usage=usage,
                    request_id=request_id,
                    credits_charged=settlement.charged,
                )
        except BaseException:
            # A failed settlement must not leave the hold open (SPEC §7).
            self.release()
            raise
        self.hold = None
        return row, settlement.charged


@sensitive_variables("api_key")
def credentials_resolve(*, workspace: Workspace, provider: str = Provider.ANTHROPIC) -> Credentials:
    """Return the credentials this workspace's next AI request uses, or raise why none."""
    llm_key = LLMKey.objects.filter(workspace=workspace, provider=provider).first()
    if llm_key is None:
        api_key = settings.PLATFORM_ANTHROPIC_API_KEY
        if not api_key:
            raise PlatformNotConfiguredError(
                "AI credits are not available on this server: operators have not configured "
                "PLATFORM_ANTHROPIC_API_KEY. A workspace admin can save the workspace's own "
                "Anthropic key in Workspace Settings → LLM Key instead."
            )
        return Credentials(source=CredentialSource.PLATFORM, api_key=api_key)
    if llm_key.status == KeyStatus.INVALID:
        raise LLMKeyInvalidError(KEY_INVALID_MESSAGE)
    try:
        api_key = llm_key_decrypt(llm_key)
    except KeyUnreadableError:
        raise LLMKeyUnreadableError(KEY_UNREADABLE_MESSAGE) from None
    return Credentials(source=CredentialSource.BYOK, api_key=api_key, llm_key=llm_key)


def _check_body(body: dict[str, Any], *, price: pricing.ModelPrice | None) -> None:
    """Check what the gateway itself needs (the model, max_tokens, messages to estimate);
    the provider judges every other field."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequestError("'model' is required: give a model name such as claude-sonnet-5.")
    if len(model) > MAX_MODEL_NAME:
        raise BadRequestError(f"'model' is too long (at most {MAX_MODEL_NAME} characters).")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise BadRequestError("'max_tokens' is required and must be a whole number.")
    if max_tokens <= 0:
        raise BadRequestError("'max_tokens' must be at least 1.")
    if price is not None and max_tokens > price.max_output_tokens:
        raise BadRequestError(
            f"'max_tokens' is {max_tokens}, above the limit of {model} "
            f"({price.max_output_tokens}); lower it."
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError(
            '\'messages\' must be a non-empty list of {"role": ..., "content": ...} objects.'
        )
    if not isinstance(body.get("stream", False), bool):
        raise BadRequestError("'stream' must be true or false.")


def call_begin(
    *,
    workspace: Workspace,
    user: Any,
    body: dict[str, Any],
    provider: str = Provider.ANTHROPIC,
    api_token: Any = None,
) -> AICall:
    """Check the request, resolve its credentials and hold its credits.

    Raise a GatewayError, with the request's usage row written, if it cannot go out.
    """
    model = body.get("model")
    call = AICall(
        workspace=workspace,
        user=user,
        provider=provider,
        model=model if isinstance(model, str) else "",
        stream=body.get("stream") is True,
        started=time.perf_counter(),
        api_token=api_token,
    )
    try:
        credentials = credentials_resolve(workspace=workspace, provider=provider)
    except GatewayError as error:
        raise call.refuse(error) from None
    call.source, call.credentials = credentials.source, credentials
    try:
        price = pricing.get_price(model) if isinstance(model, str) else None
        _check_body(body, price=price)
        if credentials.source == CredentialSource.PLATFORM and price is None:
            raise BadRequestError(
                f"The model {shown(model)} is not available with AI credits. Choose one of: "
                f"{', '.join(sorted(settings.AI_MODEL_PRICES))}."
            )
    except BadRequestError as error:
        raise call.refuse(error) from None
    if credentials.source == CredentialSource.PLATFORM:
        call.price = price
        _hold_credits(call, amount=pricing.hold_amount(price, body))
    return call


def _hold_credits(call: AICall, *, amount: int) -> None:
    try:
        call.hold = ledger.credits_hold(
            workspace=call.workspace,
            amount=amount,
            idempotency_key=f"ai-request:{uuid.uuid4().hex}",
            user=call.user if getattr(call.user, "pk", None) else None,
        )
    except LedgerMemberLimitError as exc:
        raise call.refuse(MemberCreditLimitError(str(exc))) from None
    except LedgerInsufficientError as exc:
        raise call.refuse(
            InsufficientCreditsError(
                f"Not enough AI credits: this request can cost up to {amount:,} credits and the "
                f"workspace has {exc.balance:,}. Lower max_tokens, ask a workspace admin to add "
                "credits, or save your own Anthropic key in Workspace Settings → LLM Key."
            )
        ) from None


def call_succeeded(call: AICall, *, usage: Usage, request_id: str | None) -> tuple[AIRequest, int]:
    """Charge the real usage (credits path) and write the usage row."""
    return call.charge(usage=usage, request_id=request_id)


def call_ended_early(
    call: AICall,
    *,
    usage: Usage,
    request_id: str | None,
    outcome: str,
    error: ProviderError | None = None,
) -> tuple[AIRequest, int]:
    """A stream the client abandoned or the provider broke: charge what the provider produced
    (its input, and the output seen so far), release the rest of the hold."""
    failure = provider_failed(error, source=call.source) if error is not None else None
    return call.charge(usage=usage, request_id=request_id, outcome=outcome, error=failure)


def call_failed(call: AICall, error: ProviderError) -> GatewayError:
    """The provider refused or could not be reached: release the hold, mark a rejected
    workspace key invalid, write the usage row; return the error to answer."""
    if isinstance(error, KeyRejectedError) and call.source == CredentialSource.BYOK:
        failure = key_rejected(call.credentials.llm_key, error)
    else:
        failure = provider_failed(error, source=call.source)
    return call.refuse(failure)


def call_aborted(call: AICall, *, outcome: str = Outcome.PROVIDER_ERROR) -> None:
    """The request stopped before the provider answered (an exception of our own, or its
    client left): release its hold."""
    call.release()
    call.record(outcome=outcome)


def provider_failed(error: ProviderError, *, source: str) -> GatewayError:
    if isinstance(error, KeyRejectedError) and source == CredentialSource.PLATFORM:
        # The platform's own key was refused: the workspace can do nothing about it.
        logger.error(
            "Anthropic refused the platform key (PLATFORM_ANTHROPIC_API_KEY): %s", error.message
        )
        return ProviderFailedError(
            "The platform's Anthropic credentials were refused; operators must fix "
            "PLATFORM_ANTHROPIC_API_KEY. Nothing was charged.",
            error_type="platform_credentials_rejected",
            http_status=503,
            provider_error_type=error.provider_error_type,
            request_id=error.request_id or "",
        )
    return ProviderFailedError(
        f"{error.message} Nothing was charged.",
        error_type=error.error_type,
        http_status=error.http_status,
        provider_error_type=error.provider_error_type,
        request_id=error.request_id or "",
        retry_headers=error.retry_headers,
    )


def key_rejected(llm_key: LLMKey, error: KeyRejectedError) -> GatewayError:
    """Mark the workspace key invalid after a live 401/403, as a settings-page check would."""
    llm_key_record_check(
        llm_key=llm_key,
        result=CheckResult(
            CheckOutcome.INVALID,
            reason=error.message,
            error_type=error.provider_error_type,
            status_code=error.status_code,
        ),
        actor=Actor(label="system (AI request refused by Anthropic)"),
    )
    return LLMKeyRejectedError(
        f"{error.message} The key is now marked invalid; update it in Workspace Settings → "
        "LLM Key. AI requests do not fall back to AI credits.",
        provider_error_type=error.provider_error_type,
        request_id=error.request_id or "",
    )


# --- Sync: pages and Python callers ---------------------------------------------------------


@sensitive_variables("call")
def create_message(
    *,
    workspace: Workspace,
    user: Any,
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int,
    system: Any = None,
    provider: str = Provider.ANTHROPIC,
    **fields: Any,
) -> MessageResponse:
    """Run one non-streamed AI request for the workspace with the credentials §7 prescribes.

    ``fields`` are any other Messages API fields (tools, temperature, ...). Raises a
    GatewayError (refusals, bad requests, provider errors); every outcome writes one
    AIRequest row, and nothing is charged unless the provider answered. Streams are served
    by the async API (``astream_message``).
    """
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, **fields}
    if system is not None:
        body["system"] = system
    call = call_begin(workspace=workspace, user=user, body=body, provider=provider)
    adapter = get_adapter(provider)
    try:
        result = adapter.create_message(api_key=call.credentials.api_key, body=body)
    except ProviderError as error:
        raise call_failed(call, error) from None
    except BaseException:
        call_aborted(call)
        raise
    row, charged = call_succeeded(call, usage=result.usage, request_id=result.request_id)
    return MessageResponse(
        result=result, credential_source=call.source, credits_charged=charged, ai_request=row
    )


# --- Async: the API views -------------------------------------------------------------------


@sensitive_variables("call")
async def acreate_message(
    call: AICall, *, body: dict[str, Any], headers: dict[str, str]
) -> MessageResponse:
    """Send a begun request to the provider and finish it (settle, usage row)."""
    adapter = get_adapter(call.provider)
    try:
        result = await adapter.acreate_message(
            api_key=call.credentials.api_key, body=body, headers=headers
        )
    except ProviderError as error:
        raise await database_section(call_failed)(call, error) from None
    except asyncio.CancelledError:
        # Django cancels the view when the client's connection closes: the upstream request
        # is cancelled with it, and the client left (SPEC §17).
        await asyncio.shield(
            database_section(call_aborted)(call, outcome=Outcome.CLIENT_DISCONNECTED)
        )
        raise
    except BaseException:
        await asyncio.shield(database_section(call_aborted)(call))
        raise
    row, charged = await database_section(call_succeeded)(
        call, usage=result.usage, request_id=result.request_id
    )
    return MessageResponse(
        result=result, credential_source=call.source, credits_charged=charged, ai_request=row
    )


@sensitive_variables("call")
async def astream_message(
    call: AICall, *, body: dict[str, Any], headers: dict[str, str], trailer: bool
) -> GatewayStream:
    """Open a begun request's stream at the provider; a refusal raises a GatewayError before
    any byte is relayed. ``trailer`` ends the stream with a ``gateway`` event saying which
    credentials paid and what it cost (the session API's; the Anthropic-compatible one adds
    nothing to the provider's events)."""
    adapter = get_adapter(call.provider)
    try:
        stream = await adapter.astream_message(
            api_key=call.credentials.api_key, body=body, headers=headers
        )
    except ProviderError as error:
        raise await database_section(call_failed)(call, error) from None
    except BaseException:
        await asyncio.shield(database_section(call_aborted)(call))
        raise
    return GatewayStream(call, stream, trailer=trailer)


def relayed_headers(source: str, headers: dict[str, str]) -> dict[str, str]:
    """The provider's response headers to pass on: all of them (request id, rate limits) for
    the workspace's own key; on AI credits only the request id, since the rate limits are
    the platform account's."""
    if source == CredentialSource.BYOK:
        return headers
    return {name: value for name, value in headers.items() if name == "request-id"}


def sse_event(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def sse_error(error: GatewayError) -> bytes:
    return sse_event(
        "error", {"type": "error", "error": {"type": error.error_type, "message": error.message}}
    )


class GatewayStream:
    """A streamed AI request: the provider's events as bytes, settled when they end.

    However the stream ends, its request is settled once, in a database section of its own:
    the whole usage when the provider finished; what the provider produced when the provider
    broke the stream (its error is relayed as an ``error`` event) or the client went away.
    """

    def __init__(self, call: AICall, stream: MessageStream, *, trailer: bool):
        self.call = call
        self.headers = relayed_headers(call.source, stream.headers)
        self.credential_source = call.source
        self.credits_charged = 0
        self.ai_request: AIRequest | None = None
        self._stream = stream
        self._trailer = trailer
        self._ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        outcome, error = Outcome.CLIENT_DISCONNECTED, None
        try:
            try:
                async for chunk in self._stream:
                    yield chunk
            except ProviderError as broken:
                outcome, error = Outcome.PROVIDER_ERROR, broken
                yield sse_error(provider_failed(broken, source=self.call.source))
            else:
                summary = self._stream.summary
                error = summary.error
                ok = summary.finished and error is None
                outcome = Outcome.OK if ok else Outcome.PROVIDER_ERROR
            await asyncio.shield(self._end(outcome, error))
            if self._trailer:
                yield sse_event(
                    "gateway",
                    {
                        "type": "gateway",
                        "credential_source": self.credential_source,
                        "credits_charged": self.credits_charged,
                    },
                )
        finally:
            # The client went away (cancelled, or the stream was closed unfinished).
            await asyncio.shield(self._end(outcome, error))

    def close(self) -> None:
        """Settle a stream that was never read to its end: Django calls this (in a thread)
        when the response is done, also when its client went away between two chunks or
        before the first, where no code of the stream's own runs."""
        async_to_sync(self._end)(Outcome.CLIENT_DISCONNECTED, None)

    async def _end(self, outcome: str, error: ProviderError | None) -> None:
        # Every caller runs this on the event loop's thread: the first one settles.
        if self._ended:
            return
        self._ended = True
        await self._stream.aclose()
        summary = self._stream.summary
        if outcome == Outcome.OK:
            row, charged = await database_section(call_succeeded)(
                self.call, usage=summary.usage, request_id=summary.request_id
            )
        else:
            row, charged = await database_section(call_ended_early)(
                self.call,
                usage=summary.usage,
                request_id=summary.request_id,
                outcome=outcome,
                error=error,
            )
        self.ai_request, self.credits_charged = row, charged
