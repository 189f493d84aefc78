"""The AI gateway: the one entry point for every AI request of a workspace.

Per request it resolves the credentials (SPEC §7):

- the workspace has a key that is ``valid`` or ``unverified`` → that key, no credits;
- its key is ``invalid`` → refused at once, no provider call, never AI credits instead;
- its key cannot be decrypted → refused, status untouched (an operator's problem);
- no key → the platform key, paid with AI credits: reserve what the request's start needs
  (a plain request: the most it can cost), extend as a stream produces more, settle what the
  provider billed at the end, release the rest (docs/decisions/100-106).

A request runs in three parts, and only the first and the last touch the database, each in
a short section of its own (``ai_gateway.database``), so that the provider call and an open
stream hold no database connection:

1. ``call_begin``: check the request, resolve the credentials, reserve the credits;
2. the provider call (``providers``), sync for pages and Python callers, async for the API;
   a stream's pump (``GatewayStream``) extends the reservation as output arrives;
3. ``AICall.end`` — the one place every request ends, reached through ``call_succeeded`` /
   ``call_failed`` / ``call_ended_early`` / ``call_aborted`` and the pump: settle or release
   once, and write the request's one ``AIRequest`` row.

``create_message`` runs all three for a caller in sync code; the API views run them around
the async provider calls (``acreate_message``, ``astream_message``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.views.decorators.debug import sensitive_variables

from api_tokens.models import ApiToken
from credits import pricing
from credits import services as ledger
from credits.exceptions import ConcurrencyLimitError as LedgerConcurrencyError
from credits.exceptions import InsufficientCreditsError as LedgerInsufficientError
from credits.exceptions import MemberCreditLimitError as LedgerMemberLimitError
from credits.exceptions import ReservationExpiredError
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

from . import leases, metering
from .database import database_section
from .errors import (
    BadRequestError,
    ConcurrencyLimitedError,
    CreditsRefusedError,
    GatewayError,
    LLMKeyInvalidError,
    LLMKeyRejectedError,
    LLMKeyUnreadableError,
    MemberLimitRefusedError,
    PlatformNotConfiguredError,
    ProviderFailedError,
    StreamTimedOutError,
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
# Output tokens over which a stream's price per output token is measured.
PRICING_SPAN = 1_000_000


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
    """One AI request from begin to end: its reservation and what its usage row is written
    from. ``end`` is the one place a request ends: whatever happened, it settles or releases
    the reservation once and writes the request's one ``AIRequest`` row."""

    workspace: Workspace
    user: Any
    provider: str
    model: str
    stream: bool
    started: float
    source: str = CredentialSource.NONE
    credentials: Credentials | None = field(default=None, repr=False)
    price: pricing.ModelPrice | None = None
    terms: pricing.RequestTerms = pricing.STANDARD_TERMS
    hold: Any = None
    api_token: Any = None  # the workspace API token of a program's request
    held: int = 0  # credits the reservation holds now (the hold and its extensions)
    worst: int = 0  # the most the request can cost
    first: int = 0  # what it reserved at its start
    hidden_work: bool = False  # the provider may bill work the stream does not show
    extension_refused: bool = False
    stopped_by: str = ""  # what refused the last extension (credits.services.Extension)
    result: tuple[AIRequest | None, int] | None = None

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
        usage = metering.usable_counts(usage or Usage())
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
            prices=self.price.snapshot() if self.price else None,
        )

    def reserve(self, amount: int) -> None:
        """Reserve ``amount`` credits for the request, or raise the ledger's refusal."""
        self.hold = ledger.credits_hold(
            workspace=self.workspace,
            amount=amount,
            idempotency_key=f"ai-request:{uuid.uuid4().hex}",
            user=self.user if getattr(self.user, "pk", None) else None,
            max_open=settings.AI_CREDITS_MAX_CONCURRENT_REQUESTS,
            context=self._row_context(),
        )
        self.held = self.first = amount
        leases.keeper.add(self.hold.pk)

    def _row_context(self) -> dict[str, Any]:
        """What the usage row needs beyond the reservation's own columns, kept with the
        reservation in its INSERT, should this process die before ``end`` (decision 107)."""
        return {
            "provider": self.provider,
            "model": self.model[:MAX_MODEL_NAME],
            "stream": self.stream,
            "api_token": getattr(self.api_token, "pk", None),
            "request_id": current_request_id()[:100],
            "prices": self.price.snapshot() if self.price else None,
        }

    def produced(self, usage: Usage) -> int:
        """What the usage seen so far costs (0 when it cannot be priced)."""
        if self.price is None or metering.usage_problem(usage) not in (None, metering.NO_INPUT):
            return 0
        return pricing.cost(self.price, usage, self.terms)

    def metered(self, usage: Usage) -> tuple[int, int]:
        """What the usage seen so far costs, and the credits to extend the reservation by now
        (0: none needed, or the balance already refused more). No database work."""
        produced = self.produced(usage)
        if self.extension_refused:
            return produced, 0
        step = metering.extension(
            held=self.held, produced=produced, worst=self.worst, first=self.first
        )
        return produced, step

    def output_token_cost(self, usage: Usage) -> float:
        """What one more output token costs at most, with this input (its rate, its tier)."""
        more = dataclasses.replace(usage, output_tokens=usage.output_tokens + PRICING_SPAN)
        return (self.produced(more) - self.produced(usage) + 1) / PRICING_SPAN

    def extend(self, step: int) -> int:
        """Extend the reservation by up to ``step`` credits, as far as the balance and the
        member's monthly limit allow (``stopped_by`` says which one refused)."""
        extension = ledger.credits_extend_checked(hold=self.hold, amount=step)
        self.held += extension.taken
        self.extension_refused = extension.taken < step
        self.stopped_by = extension.stopped_by
        return extension.taken

    def end(
        self,
        *,
        outcome: str,
        usage: Usage | None = None,
        request_id: str | None = None,
        error: GatewayError | None = None,
        complete: bool = False,
    ) -> tuple[AIRequest | None, int]:
        """End the request: charge what the provider billed (or a bound that covers it),
        release the rest, write the usage row; once, whatever calls it again.

        ``usage`` is what the provider reported (``complete``: its final count) or, for a
        request cut short, what was seen of it; None when nothing reached the provider.
        """
        if self.result is not None:
            return self.result
        if self.hold is None:
            self.result = (
                self.record(outcome=outcome, error=error, usage=usage, request_id=request_id),
                0,
            )
            return self.result
        amount, outcome = self._charge_for(usage, outcome=outcome, complete=complete)
        try:
            with transaction.atomic():
                if amount == 0:
                    ledger.credits_release(hold=self.hold)
                    charged = 0
                else:
                    charged = ledger.credits_settle(
                        hold=self.hold, amount=amount, held=self.held
                    ).charged
                row = self.record(
                    outcome=outcome,
                    error=error,
                    usage=usage,
                    request_id=request_id,
                    credits_charged=charged,
                )
        except ReservationExpiredError as expired:
            return self._expired(expired)
        except (OperationalError, InterfaceError):
            # The database cannot be reached: keep renewing the lease and settle once it
            # can (decision 104); the client is answered now.
            leases.keeper.defer(lambda: self._end_later(amount, outcome, usage, request_id, error))
            self.result = (None, amount)
            return self.result
        except BaseException:
            # A settlement that cannot be written must not leave the reservation open.
            self._release_quietly()
            raise
        leases.keeper.discard(self.hold.pk)
        self.result = (row, charged)
        return self.result

    def _charge_for(self, usage: Usage | None, *, outcome: str, complete: bool) -> tuple[int, str]:
        """The credits to charge and the outcome to record (decisions 101 and 103)."""
        if usage is None:
            return 0, outcome
        problem = metering.usage_problem(usage)
        if complete:
            if problem is None:
                return pricing.cost(self.price, usage, self.terms), outcome
            # Missing or garbled usage from the provider: the reservation, never 0.
            logger.warning("provider usage unusable (%s): charging the reservation", problem)
            return max(self.held, 1), Outcome.USAGE_UNVERIFIED
        if problem == metering.NO_INPUT and not usage.output_tokens:
            return 0, outcome  # the provider produced nothing before the request ended
        if problem not in (None, metering.NO_INPUT):
            return max(self.held, 1), Outcome.USAGE_UNVERIFIED
        seen = pricing.cost(self.price, usage, self.terms)
        if self.hidden_work:
            # Cut before the final usage: hidden thinking or server-tool tokens are not in
            # what was seen; the reservation is the bound charged for them.
            return max(seen, self.held), outcome
        return seen, outcome

    def _end_later(self, amount, outcome, usage, request_id, error) -> None:
        """Settle a request whose first settlement found the database unreachable."""
        try:
            with transaction.atomic():
                if amount == 0:
                    ledger.credits_release(hold=self.hold)
                    charged = 0
                else:
                    charged = ledger.credits_settle(
                        hold=self.hold, amount=amount, held=self.held
                    ).charged
                row = self.record(
                    outcome=outcome,
                    error=error,
                    usage=usage,
                    request_id=request_id,
                    credits_charged=charged,
                )
        except ReservationExpiredError as expired:
            self._expired(expired)
            return
        leases.keeper.discard(self.hold.pk)
        self.result = (row, charged)

    def _expired(self, expired: ReservationExpiredError) -> tuple[None, int]:
        """The sweep took this request for dead and charged its whole reservation, with its
        usage row (decision 107): neither is written again."""
        logger.warning(
            "request ended after the sweep charged its reservation: hold=%s charged=%s",
            self.hold.pk,
            expired.charged,
        )
        leases.keeper.discard(self.hold.pk)
        self.result = (None, expired.charged)
        return self.result

    def _release_quietly(self) -> None:
        try:
            ledger.credits_release(hold=self.hold)
        except Exception:
            logger.exception("credits release failed: hold=%s", self.hold.pk)
        leases.keeper.discard(self.hold.pk)

    def refuse(self, error: GatewayError, *, usage: Usage | None = None) -> GatewayError:
        """End the request unsent (or refused by the provider) and return the error to raise."""
        self.end(outcome=error.outcome, error=error, usage=None)
        return error


def ai_request_record_process_died(reservation: ledger.ExpiredReservation) -> AIRequest | None:
    """Write the usage row of a credit-paid request whose serving process died: the sweep
    charged its whole reservation, in whose transaction this runs (decision 107;
    ``CREDITS_EXPIRED_RESERVATION_RECORDER``). Its usage was never seen: no token counts."""
    if not isinstance(reservation.context, dict):
        return None  # not an AI request's reservation (the gateway always stores one)
    context = reservation.context
    token = context.get("api_token")
    if token is not None and not ApiToken.objects.filter(pk=token).exists():
        token = None  # deleted since: the row keeps no dangling reference
    alive = (reservation.renewed_at - reservation.created_at).total_seconds()
    return AIRequest.objects.create(
        workspace_id=reservation.workspace_id,
        user_id=reservation.user_id,
        api_token_id=token,
        provider=str(context.get("provider") or Provider.ANTHROPIC)[:20],
        model=str(context.get("model") or "")[:MAX_MODEL_NAME],
        credential_source=CredentialSource.PLATFORM,
        outcome=Outcome.PROCESS_DIED,
        credits_charged=reservation.credits,
        latency_ms=max(0, min(int(alive * 1000), 2**31 - 1)),
        provider_request_id=str(context.get("request_id") or "")[:100],
        stream=context.get("stream") is True,
        prices=context.get("prices"),
    )


# Where each provider's platform key is configured (SPEC §18): without one, the provider
# is BYOK-only.
PLATFORM_KEY_SETTINGS = {
    Provider.ANTHROPIC: "PLATFORM_ANTHROPIC_API_KEY",
    Provider.OPENAI: "PLATFORM_OPENAI_API_KEY",
    Provider.GEMINI: "PLATFORM_GEMINI_API_KEY",
}


@sensitive_variables("api_key")
def credentials_resolve(*, workspace: Workspace, provider: str = Provider.ANTHROPIC) -> Credentials:
    """Return the credentials this workspace's next AI request uses, or raise why none."""
    name = Provider(provider).label
    llm_key = LLMKey.objects.filter(workspace=workspace, provider=provider).first()
    if llm_key is None:
        setting = PLATFORM_KEY_SETTINGS[provider]
        api_key = getattr(settings, setting, "")
        if not api_key:
            raise PlatformNotConfiguredError(
                f"AI credits are not available for {name} on this server: operators have not "
                f"configured {setting}. A workspace admin can save the workspace's own "
                f"{name} key in Workspace Settings → LLM Key instead."
            )
        return Credentials(source=CredentialSource.PLATFORM, api_key=api_key)
    if llm_key.status == KeyStatus.INVALID:
        raise LLMKeyInvalidError(KEY_INVALID_MESSAGE.replace("Anthropic", name))
    try:
        api_key = llm_key_decrypt(llm_key)
    except KeyUnreadableError:
        raise LLMKeyUnreadableError(KEY_UNREADABLE_MESSAGE.replace("Anthropic", name)) from None
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


def _check_priced(body: dict[str, Any], beta: str | None, price: pricing.ModelPrice) -> None:
    """Refuse, on credits, what the price table cannot charge for (decision 114)."""
    unpriced = pricing.unpriced_features(body, beta, price)
    if unpriced:
        raise BadRequestError(
            f"This request uses {', '.join(unpriced)}, which AI credits cannot pay for yet, so "
            "it was not sent to Anthropic. It works with the workspace's own Anthropic key "
            "(Workspace Settings → LLM Key)."
        )


def call_begin(
    *,
    workspace: Workspace,
    user: Any,
    body: dict[str, Any],
    provider: str = Provider.ANTHROPIC,
    api_token: Any = None,
    headers: dict[str, str] | None = None,
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
        if credentials.source == CredentialSource.PLATFORM:
            _check_priced(body, (headers or {}).get("anthropic-beta"), price)
    except BadRequestError as error:
        raise call.refuse(error) from None
    if credentials.source == CredentialSource.PLATFORM:
        call.price, call.terms = price, pricing.RequestTerms.from_body(body)
        call.worst = metering.worst_case(price, body)
        call.hidden_work = metering.hidden_work(body)
        _reserve(call, amount=metering.first_reservation(price, body, stream=call.stream))
    return call


def _reserve(call: AICall, *, amount: int) -> None:
    try:
        call.reserve(amount)
    except LedgerConcurrencyError as exc:
        raise call.refuse(ConcurrencyLimitedError(str(exc))) from None
    except LedgerMemberLimitError as exc:
        raise call.refuse(MemberLimitRefusedError(str(exc))) from None
    except LedgerInsufficientError as exc:
        raise call.refuse(
            CreditsRefusedError(
                f"Not enough AI credits: this request needs {amount:,} credits set aside "
                f"{_reserved_for(call)} and the workspace has {exc.balance:,}. "
                f"{_what_to_do(call)} Ask a workspace admin to add credits, or save your own "
                "Anthropic key in Workspace Settings → LLM Key."
            )
        ) from None


def _reserved_for(call: AICall) -> str:
    if call.stream:
        return "to start (its input and a first part of its answer; more as it streams)"
    return "(the most it can cost: a plain request cannot be extended while it runs)"


def _what_to_do(call: AICall) -> str:
    if call.stream:
        return "Shorten the prompt or lower max_tokens."
    return 'Send it with "stream": true (reserved as it streams) or lower max_tokens.'


def call_succeeded(
    call: AICall, *, usage: Usage, request_id: str | None, outcome: str = Outcome.OK
) -> tuple[AIRequest | None, int]:
    """Charge the provider's final usage (credits path) and write the usage row."""
    return call.end(outcome=outcome, usage=usage, request_id=request_id, complete=True)


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
    return call.end(outcome=outcome, usage=usage, request_id=request_id, error=failure)


def call_failed(call: AICall, error: ProviderError) -> GatewayError:
    """The provider refused or could not be reached: release the hold, mark a rejected
    workspace key invalid, write the usage row; return the error to answer."""
    if isinstance(error, KeyRejectedError) and call.source == CredentialSource.BYOK:
        failure = key_rejected(call.credentials.llm_key, error)
    else:
        failure = provider_failed(error, source=call.source)
    return call.refuse(failure)


def call_aborted(call: AICall, *, outcome: str = Outcome.PROVIDER_ERROR) -> None:
    """The request stopped before any answer: for a reason of our own (an exception), or
    because the client left (``Outcome.CLIENT_DISCONNECTED``)."""
    call.end(outcome=outcome)


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
        actor=Actor(label=f"system (AI request refused by {Provider(llm_key.provider).label})"),
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
    sent = asyncio.ensure_future(
        adapter.acreate_message(api_key=call.credentials.api_key, body=body, headers=headers)
    )
    try:
        result = await asyncio.shield(sent)
    except ProviderError as error:
        raise await database_section(call_failed)(call, error) from None
    except asyncio.CancelledError:
        # The client left: the provider still answers and bills; read its answer without
        # the client (within the request timeout) and charge it (decision 103).
        _background(_finish_abandoned(call, sent))
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


_BACKGROUND: set[asyncio.Task] = set()


def _background(work) -> asyncio.Task:
    """Run ``work`` in a task of its own, kept until it is done."""
    task = asyncio.get_running_loop().create_task(work)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


async def _finish_abandoned(call: AICall, sent: asyncio.Future) -> None:
    try:
        result = await sent
    except ProviderError as error:
        await database_section(call_failed)(call, error)
        return
    except BaseException:
        await database_section(call_aborted)(call)
        raise
    await database_section(call_succeeded)(
        call,
        usage=result.usage,
        request_id=result.request_id,
        outcome=Outcome.CLIENT_DISCONNECTED,
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
    except asyncio.CancelledError:
        # The client left before the provider answered (Stop before the first token): the
        # user's choice, not the provider's failure.
        ended = database_section(call_aborted)(call, outcome=Outcome.CLIENT_DISCONNECTED)
        await asyncio.shield(ended)
        raise
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


# Server-sent events end at a blank line, whichever line ending the provider uses
# (html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream): Anthropic
# and OpenAI send "\n\n", Google's streams "\r\n\r\n".
EVENT_BOUNDARIES = (b"\n\n", b"\r\n\r\n", b"\r\r")


def events_end(data: bytes) -> int:
    """Where the last whole event in ``data`` ends (0: no whole event yet)."""
    ends = [data.rfind(mark) + len(mark) for mark in EVENT_BOUNDARIES if mark in data]
    return max(ends, default=0)


def sse_event(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def sse_error(error: GatewayError) -> bytes:
    return sse_event(
        "error", {"type": "error", "error": {"type": error.error_type, "message": error.message}}
    )


CREDITS_RAN_OUT_MESSAGE = (
    "The workspace's AI credits ran out during this answer, so it was stopped here; what was "
    "produced is charged. Ask a workspace admin to add credits (support grants them; the "
    "monthly allowance adds more), or save your own Anthropic key in Workspace Settings → "
    "LLM Key."
)
MEMBER_LIMIT_RAN_OUT_MESSAGE = (
    "Your monthly AI credits limit in this workspace was reached during this answer, so it "
    "was stopped here; what was produced is charged. A workspace admin can change member "
    "limits in Workspace Settings → Members; the limit starts again on the first day of next "
    "month (UTC)."
)
# How a stream ends: its outcome, the provider's error (if any) and the notice to send.
Ending = tuple[str, ProviderError | None, GatewayError | None]


class GatewayStream:
    """A streamed AI request: the provider's events as bytes, metered and ended in one place.

    The response's iterator reads the provider's stream itself and relays whole events; it
    looks at the reservation only when the output seen passes the point where it needs
    extending (``metering.output_before_next_look``). The request ends (``AICall.end``) once:

    - the provider finished → its final usage; it broke the stream → what it produced, its
      ``error`` event relayed;
    - the credits (or the member's monthly limit) ran out → the provider's stream is closed
      and the client's ends with an ``error`` event saying so; ``AI_STREAM_MAX_SECONDS``
      passed → the same, as a timeout;
    - the client left, or took no chunk for ``AI_STREAM_WRITE_TIMEOUT_SECONDS`` → a task of
      its own (``_run_without_client``) closes the provider's stream, unless the request has
      work the stream does not show (hidden thinking, server tools): then it reads on to the
      final usage, within the same cap.

    One timer per stream (``_watch``) enforces the cap during a provider read and the write
    timeout: a timer per read or write costs more CPU than relaying the chunk.
    """

    def __init__(
        self,
        call: AICall,
        stream: MessageStream,
        *,
        trailer: bool,
        error_event: Callable[[GatewayError], bytes] = sse_error,
        credits_ran_out: str = CREDITS_RAN_OUT_MESSAGE,
    ):
        # ``error_event`` writes the notice of an early end in the provider's own stream
        # shape (Anthropic's ``event: error`` unless the endpoint gives another).
        self.call = call
        self._error_event = error_event
        self._credits_ran_out = credits_ran_out
        self.headers = relayed_headers(call.source, stream.headers)
        self.credential_source = call.source
        self.credits_charged = 0
        self.ai_request: AIRequest | None = None
        self._stream = stream
        self._chunks = aiter(stream)
        self._trailer = trailer
        # Output tokens seen at which the reservation is looked at next (never on BYOK).
        self._look_at: float = 0 if call.hold is not None else math.inf
        self._next: asyncio.Future | None = None  # hidden work: the provider read in flight
        self._without_client: asyncio.Task | None = None
        self._ended = False
        self._started = False
        # The watchdog's view: set by ``_begin``.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._write_timeout = 0.0
        self._reading = False
        self._writing_since: float | None = None
        self._capped = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self._begin()
        self._task = asyncio.current_task()
        self._watch()
        ending: Ending | None = None
        try:
            pending, done = b"", False
            while not done:
                if self._loop.time() >= self._deadline:
                    ending = self._timed_out()
                    break
                try:
                    chunk = await self._read()
                except StopAsyncIteration:
                    chunk, done = b"", True
                # Relay whole events only, so that an error event the gateway adds never
                # lands inside a provider's event.
                data = pending + chunk if pending else chunk
                end = len(data) if done or data.endswith(b"\n\n") else events_end(data)
                pending = data[end:]
                if end:
                    self._writing_since = self._loop.time()
                    yield data[:end]
                    self._writing_since = None
                    if self._without_client is not None:
                        return  # cut for not reading: the request ended without the client
                if done:
                    ending = self._provider_ended()
                elif self._stream.summary.output_tokens_seen >= self._look_at:
                    ending = await self._meter()
                    done = ending is not None
        except ProviderError as broken:
            notice = provider_failed(broken, source=self.call.source)
            ending = (Outcome.PROVIDER_ERROR, broken, notice)
        except asyncio.CancelledError:
            if not self._capped or self._task.uncancel() > 0:
                raise  # the client left (the finally ends the request without it)
            ending = self._timed_out()
        finally:
            if ending is None:
                await self._leave()
        await asyncio.shield(_background(self._end(*ending[:2])))
        notice = ending[2]
        if notice is not None:
            yield self._error_event(notice)
        if self._trailer:
            yield sse_event(
                "gateway",
                {
                    "type": "gateway",
                    "credential_source": self.credential_source,
                    "credits_charged": self.credits_charged,
                },
            )

    def close(self) -> None:
        """Django calls this (in a thread) when the response is done, also when its client
        went away before the first chunk, where no code of the stream's own ran."""
        if not self._started:
            async_to_sync(self._close_unread)()

    async def _close_unread(self) -> None:
        self._begin()
        await self._run_without_client()

    def _begin(self) -> None:
        self._started = True
        self._loop = asyncio.get_running_loop()
        remaining = self.call.started + settings.AI_STREAM_MAX_SECONDS - time.perf_counter()
        self._deadline = self._loop.time() + max(0.0, remaining)
        self._write_timeout = settings.AI_STREAM_WRITE_TIMEOUT_SECONDS

    def _watch(self) -> None:
        """The stream's one timer: cut a provider read that runs past the stream cap; end the
        request without the client once it took no chunk for the write timeout."""
        if self._ended or self._without_client is not None:
            return
        now = self._loop.time()
        if self._reading and now >= self._deadline:
            self._capped = True
            self._task.cancel()
            return
        since = self._writing_since
        if since is not None and now - since >= self._write_timeout:
            self._without_client = _background(self._run_without_client())
            return
        wake = (now if since is None else since) + self._write_timeout
        if now < self._deadline:
            wake = min(wake, self._deadline)
        self._timer = self._loop.call_at(wake, self._watch)

    async def _read(self) -> bytes:
        """The provider's next chunk. With hidden work the read is a task of its own, which
        the client's leaving does not cancel: what it reads is read on without the client."""
        self._reading = True
        try:
            if not self.call.hidden_work:
                return await anext(self._chunks)
            if self._next is None:
                self._next = asyncio.ensure_future(anext(self._chunks))
            chunk = await asyncio.shield(self._next)
            self._next = None
            return chunk
        finally:
            self._reading = False

    async def _leave(self) -> None:
        """The client left (or was cut for not reading): end the request without it, and
        wait for that while the event loop lets us."""
        if self._without_client is None:
            self._without_client = _background(self._run_without_client())
        with contextlib.suppress(BaseException):
            await asyncio.shield(self._without_client)

    async def _run_without_client(self) -> None:
        outcome, error = Outcome.CLIENT_DISCONNECTED, None
        if self.call.hidden_work:
            outcome, error = await self._read_on()
        await self._end(outcome, error)

    async def _read_on(self) -> tuple[str, ProviderError | None]:
        """Read the provider's stream to its final usage without the client, metered as the
        client's was, within the stream cap."""
        try:
            async with asyncio.timeout_at(self._deadline):
                while True:
                    if self._next is not None:
                        read, self._next = self._next, None
                        await read
                    else:
                        await anext(self._chunks)
                    if self._stream.summary.output_tokens_seen >= self._look_at:
                        ending = await self._meter()
                        if ending is not None:
                            return ending[0], None
        except StopAsyncIteration:
            return Outcome.CLIENT_DISCONNECTED, self._stream.summary.error
        except ProviderError as broken:
            return Outcome.PROVIDER_ERROR, broken
        except TimeoutError:
            return Outcome.TIMED_OUT, None

    async def _meter(self) -> Ending | None:
        """Look at the reservation: extend it as the output passes three quarters of it; end
        the stream when the output passes it and no more can be held. The final usage
        (``message_delta``) may pass it at once, hidden work above all: the settlement
        charges that; only a stream still producing is cut."""
        call, summary = self.call, self._stream.summary
        if summary.finished:
            self._look_at = math.inf
            return None
        usage = self._seen()
        produced, step = call.metered(usage)
        if step:
            await database_section(call.extend)(step)
        if produced > call.held:
            return self._ran_out()
        self._look_at = summary.output_tokens_seen + metering.output_before_next_look(
            held=call.held,
            produced=produced,
            refused=call.extension_refused,
            per_token=call.output_token_cost(usage),
        )
        return None

    def _seen(self) -> Usage:
        summary = self._stream.summary
        usage = summary.usage
        if summary.finished or summary.output_tokens_seen <= usage.output_tokens:
            return usage
        return dataclasses.replace(usage, output_tokens=summary.output_tokens_seen)

    def _provider_ended(self) -> Ending:
        summary = self._stream.summary
        ok = summary.finished and summary.error is None
        return (Outcome.OK if ok else Outcome.PROVIDER_ERROR), summary.error, None

    def _ran_out(self) -> Ending:
        if self.call.stopped_by == ledger.MEMBER_LIMIT:
            return (
                Outcome.CREDITS_EXHAUSTED,
                None,
                MemberLimitRefusedError(MEMBER_LIMIT_RAN_OUT_MESSAGE),
            )
        return Outcome.CREDITS_EXHAUSTED, None, CreditsRefusedError(self._credits_ran_out)

    def _timed_out(self) -> Ending:
        return (
            Outcome.TIMED_OUT,
            None,
            StreamTimedOutError(
                f"This answer ran longer than this service allows for one request "
                f"({settings.AI_STREAM_MAX_SECONDS:g} s), so it was stopped here; what was "
                "produced is charged. Ask for a shorter answer or split the task."
            ),
        )

    async def _end(self, outcome: str, error: ProviderError | None) -> None:
        self._ended = True
        if self._timer is not None:
            self._timer.cancel()
        if self._next is not None:
            self._next.cancel()
            with contextlib.suppress(BaseException):
                await self._next
        await self._stream.aclose()
        summary = self._stream.summary
        failure = provider_failed(error, source=self.call.source) if error is not None else None
        if self.call.hold is None and outcome == Outcome.CREDITS_EXHAUSTED:
            outcome = Outcome.PROVIDER_ERROR
        usage = summary.usage if summary.finished else self._seen()
        if not summary.finished and not summary.usage.input_tokens and not usage.output_tokens:
            usage = None  # nothing came back: nothing to charge
        row, charged = await database_section(self.call.end)(
            outcome=outcome,
            usage=usage,
            request_id=summary.request_id,
            error=failure,
            complete=summary.finished,
        )
        self.ai_request, self.credits_charged = row, charged
