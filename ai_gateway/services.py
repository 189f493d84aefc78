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
   a stream is relayed by ``ai_gateway.streams.GatewayStream``, which extends the
   reservation as output arrives;
3. ``AICall.end`` — the one place every request ends, reached through ``call_succeeded`` /
   ``call_failed`` / ``call_ended_early`` / ``call_aborted`` and the stream: settle or
   release once, and write the request's one ``AIRequest`` row.

``create_message`` runs all three for a caller in sync code; the API views run them around
the async provider calls (``acreate_message``, ``astream_message``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

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
)
from .models import AIRequest, CredentialSource, Outcome
from .request_ids import current_request_id
from .streams import (  # noqa: F401 - the stream's names, importable from here as before
    CREDITS_RAN_OUT_MESSAGE,
    EVENT_BOUNDARIES,
    GatewayStream,
    _background,
    events_end,
    relayed_headers,
    sse_error,
    sse_event,
)

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
    output_bound: int = 0  # the most output tokens the provider can bill (0: not known)
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

    def covers_the_rest(self, usage: Usage) -> bool:
        """Whether the reservation already holds the most this stream can still cost: its
        input is known (the provider reported it) and, without hidden work (server-tool
        results, MCP, omitted thinking), fixed; its output is bounded by ``max_tokens``. Such
        a stream can be neither extended nor cut, so it needs no more looks (near a full
        reservation every chunk would be priced otherwise)."""
        if self.hidden_work or not self.output_bound or metering.usage_problem(usage):
            return False
        most = dataclasses.replace(usage, output_tokens=self.output_bound)
        return self.produced(most) <= self.held

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
            row, charged = self._close(amount, outcome, usage, request_id, error)
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

    def _close(self, amount, outcome, usage, request_id, error) -> tuple[AIRequest | None, int]:
        """Settle ``amount`` (or release the reservation whole for 0) and write the usage row
        in the same transaction. A settlement writes the row in its own transaction (the
        ledger's ``then``): one around it would add a savepoint's two round trips to every
        request."""

        def write(charged: int) -> AIRequest:
            return self.record(
                outcome=outcome,
                error=error,
                usage=usage,
                request_id=request_id,
                credits_charged=charged,
            )

        if amount == 0:
            with transaction.atomic():
                ledger.credits_release(hold=self.hold)
                return write(0), 0
        written: list[AIRequest] = []
        entry = ledger.credits_settle(
            hold=self.hold,
            amount=amount,
            held=self.held,
            then=lambda settled: written.append(write(settled.charged)),
        )
        # No ``then`` ran: a repeat of a settlement whose first try committed (its answer
        # was lost with the connection), with the usage row written in its transaction.
        return (written[0] if written else None), entry.charged

    def _end_later(self, amount, outcome, usage, request_id, error) -> None:
        """Settle a request whose first settlement found the database unreachable."""
        try:
            row, charged = self._close(amount, outcome, usage, request_id, error)
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
        input_tokens = pricing.estimate_request_input_tokens(body)
        call.worst = metering.worst_case(price, body, input_tokens=input_tokens)
        call.hidden_work = metering.hidden_work(body)
        call.output_bound = pricing.output_tokens_bound(body)
        first = metering.first_reservation(
            price, body, stream=call.stream, worst=call.worst, input_tokens=input_tokens
        )
        _reserve(call, amount=first)
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
