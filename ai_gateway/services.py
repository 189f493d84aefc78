"""The AI gateway: the one entry point for every AI request of a workspace.

Per request it resolves the credentials (SPEC §7):

- the workspace has a key that is ``valid`` or ``unverified`` → that key, no credits;
- its key is ``invalid`` → refused at once, no provider call, never AI credits instead;
- its key cannot be decrypted → refused, status untouched (an operator's problem);
- no key → the platform key, paid with AI credits: hold the most the request can cost,
  settle the real usage after it, release everything on failure.

Every request ends with exactly one ``AIRequest`` row. Resolving costs one query (the
workspace's key row); the end costs one write (plus the ledger's writes on credits).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.views.decorators.debug import sensitive_variables

from config.db import insert_row, select_instance
from credits import pricing
from credits import services as ledger
from credits.exceptions import InsufficientCreditsError as LedgerInsufficientError
from llm_keys.models import KEY_USE_FIELDS, KeyStatus, LLMKey, Provider
from llm_keys.services import Actor, KeyUnreadableError, llm_key_decrypt, llm_key_record_check
from providers import (
    CheckOutcome,
    CheckResult,
    KeyRejectedError,
    ProviderError,
    StreamEvent,
    StreamSummary,
    Usage,
    get_adapter,
)
from workspaces.echo import shown
from workspaces.models import Workspace

from .errors import (
    BadRequestError,
    GatewayError,
    InsufficientCreditsError,
    LLMKeyInvalidError,
    LLMKeyRejectedError,
    LLMKeyUnreadableError,
    PlatformNotConfiguredError,
    ProviderFailedError,
)
from .models import AIRequest, CredentialSource, Outcome

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
ROLES = ("user", "assistant")


@dataclass(frozen=True, slots=True)
class Credentials:
    """Which credentials pay for a request; ``api_key`` lives only for the request."""

    source: str
    api_key: str = field(repr=False)
    llm_key: LLMKey | None = None


@dataclass(slots=True)
class MessageResponse:
    """A finished, non-streamed AI request."""

    body: dict[str, Any]
    credential_source: str
    credits_charged: int
    usage: Usage
    ai_request: AIRequest

    def as_json(self) -> dict[str, Any]:
        return {
            **self.body,
            "credential_source": self.credential_source,
            "credits_charged": self.credits_charged,
        }


@dataclass(slots=True)
class _Call:
    """What one request carries from start to finish; written into its usage row."""

    workspace: Workspace
    user: Any
    provider: str
    model: str
    stream: bool
    started: float
    source: str = CredentialSource.NONE
    price: Any = None
    hold: Any = None

    def record(
        self,
        *,
        outcome: str,
        error: GatewayError | None = None,
        usage: Usage | None = None,
        request_id: str | None = None,
    ) -> AIRequest:
        """Write the request's usage row (nothing charged) and return it."""
        row = self.usage_row(outcome=outcome, error=error, usage=usage, request_id=request_id)
        _insert_usage_row(row)
        return row

    def usage_row(
        self,
        *,
        outcome: str,
        error: GatewayError | None = None,
        usage: Usage | None = None,
        request_id: str | None = None,
    ) -> AIRequest:
        usage = usage or Usage()
        return AIRequest(
            workspace=self.workspace,
            user=self.user if getattr(self.user, "pk", None) else None,
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
            credits_charged=0,
            latency_ms=int((time.perf_counter() - self.started) * 1000),
            provider_request_id=(request_id or (error.request_id if error else "") or "")[:100],
            stream=self.stream,
        )

    def fail(self, error: GatewayError, *, usage: Usage | None = None) -> GatewayError:
        """Release any hold, write the usage row, and return the error to raise."""
        self.release()
        self.record(outcome=error.outcome, error=error, usage=usage)
        return error

    def release(self) -> None:
        if self.hold is not None:
            hold, self.hold = self.hold, None
            ledger.credits_release(hold=hold)

    def finish(self, *, usage: Usage, request_id: str | None) -> tuple[AIRequest, int]:
        """Settle the real cost (credits path) and write the usage row, in one commit."""
        if self.hold is None:
            return self.record(outcome=Outcome.OK, usage=usage, request_id=request_id), 0
        row = self.usage_row(outcome=Outcome.OK, usage=usage, request_id=request_id)
        charged_row = ledger.ChargedRow(
            table=AIRequest._meta.db_table,
            values=_usage_values(row, exclude="credits_charged"),
            charged_column=AIRequest._meta.get_field("credits_charged").column,
        )
        settlement = ledger.credits_settle(
            hold=self.hold, amount=pricing.cost(self.price, usage), with_row=charged_row
        )
        self.hold = None
        row.pk, row.credits_charged = charged_row.pk, settlement.charged
        row._state.adding = False
        row._state.db = connection.alias
        return row, settlement.charged


def _llm_key_row(*, workspace: Workspace, provider: str) -> LLMKey | None:
    """The workspace's key row: as loaded with the membership (workspaces.access), or read
    with one fixed statement (config.db) for a caller that did not go through it."""
    prefetched = getattr(workspace, "prefetched_llm_keys", {})
    if provider in prefetched:
        return prefetched[provider]
    return select_instance(
        LLMKey, KEY_USE_FIELDS, "workspace_id = %s AND provider = %s", [workspace.pk, provider]
    )


def _usage_values(row: AIRequest, *, exclude: str = "") -> dict[str, Any]:
    """The usage row's columns and database values, as the ORM would save them."""
    return {
        f.column: f.get_db_prep_save(f.pre_save(row, add=True), connection)
        for f in AIRequest._meta.concrete_fields
        if not f.primary_key and f.name != exclude
    }


def _insert_usage_row(row: AIRequest) -> None:
    row.pk = insert_row(AIRequest._meta.db_table, _usage_values(row))
    row._state.adding = False
    row._state.db = connection.alias


@sensitive_variables("api_key")
def credentials_resolve(*, workspace: Workspace, provider: str = Provider.ANTHROPIC) -> Credentials:
    """Return the credentials this workspace's next AI request uses, or raise why none."""
    llm_key = _llm_key_row(workspace=workspace, provider=provider)
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


def _validate(*, model: Any, messages: Any, max_tokens: Any, system: Any, price: Any) -> None:
    if not isinstance(model, str) or not model.strip():
        raise BadRequestError("'model' is required: give a model name such as claude-sonnet-5.")
    if len(model) > MAX_MODEL_NAME:
        raise BadRequestError(f"'model' is too long (at most {MAX_MODEL_NAME} characters).")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError(
            '\'messages\' must be a non-empty list of {"role": ..., "content": ...} objects.'
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequestError(f"messages[{index}] must be an object with role and content.")
        if message.get("role") not in ROLES:
            raise BadRequestError(f"messages[{index}].role must be 'user' or 'assistant'.")
        content = message.get("content")
        if not (isinstance(content, str) and content.strip()) and not (
            isinstance(content, list) and content
        ):
            raise BadRequestError(
                f"messages[{index}].content must be a non-empty string or a list of blocks."
            )
    if messages[0].get("role") != "user":
        raise BadRequestError("The first message must have the role 'user'.")
    if system is not None and not isinstance(system, str | list):
        raise BadRequestError("'system' must be a string or a list of text blocks.")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise BadRequestError("'max_tokens' is required and must be a whole number.")
    if max_tokens <= 0:
        raise BadRequestError("'max_tokens' must be at least 1.")
    if price is not None and max_tokens > price.max_output_tokens:
        raise BadRequestError(
            f"'max_tokens' is {max_tokens}, above the limit of {model} "
            f"({price.max_output_tokens}); lower it."
        )


def _provider_failed(error: ProviderError, *, source: str) -> GatewayError:
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
    )


def _key_rejected(call: _Call, credentials: Credentials, error: KeyRejectedError) -> GatewayError:
    """Mark the workspace key invalid after a live 401/403, as a settings-page check would."""
    llm_key_record_check(
        llm_key=credentials.llm_key,
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


def _on_provider_error(call: _Call, credentials: Credentials, error: ProviderError) -> GatewayError:
    if isinstance(error, KeyRejectedError) and credentials.source == CredentialSource.BYOK:
        failure = _key_rejected(call, credentials, error)
    else:
        failure = _provider_failed(error, source=credentials.source)
    return call.fail(failure)


@sensitive_variables("credentials")
def create_message(
    *,
    workspace: Workspace,
    user: Any,
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int,
    system: Any = None,
    stream: bool = False,
    provider: str = Provider.ANTHROPIC,
) -> MessageResponse | GatewayStream:
    """Run one AI request for the workspace with the credentials §7 prescribes.

    Returns a MessageResponse, or with ``stream=True`` a GatewayStream of events that settles
    when it ends. Raises a GatewayError (refusals, bad requests, provider errors); every
    outcome writes one AIRequest row, and nothing is charged unless the request succeeded.
    """
    call = _Call(
        workspace=workspace,
        user=user,
        provider=provider,
        model=model if isinstance(model, str) else "",
        stream=bool(stream),
        started=time.perf_counter(),
    )
    try:
        credentials = credentials_resolve(workspace=workspace, provider=provider)
    except GatewayError as error:
        raise call.fail(error) from None
    call.source = credentials.source
    try:
        price = pricing.get_price(model) if isinstance(model, str) else None
        if credentials.source == CredentialSource.PLATFORM and price is None:
            _validate(
                model=model, messages=messages, max_tokens=max_tokens, system=system, price=None
            )
            raise BadRequestError(
                f"The model {shown(model)} is not available with AI credits. Choose one of: "
                f"{', '.join(sorted(settings.AI_MODEL_PRICES))}."
            )
        _validate(model=model, messages=messages, max_tokens=max_tokens, system=system, price=price)
    except BadRequestError as error:
        raise call.fail(error) from None

    if credentials.source == CredentialSource.PLATFORM:
        call.price = price
        _hold_credits(call, messages=messages, system=system, max_tokens=max_tokens)

    adapter = get_adapter(provider)
    try:
        if stream:
            summary = StreamSummary()
            events = adapter.stream_message(
                api_key=credentials.api_key,
                model=model,
                messages=messages,
                max_tokens=max_tokens,
                system=system,
                summary=summary,
            )
            # Pull the first event now, so a refusal (401, 429, 5xx) is an ordinary error
            # with its own status rather than a failure in the middle of a 200 stream.
            first = next(events, None)
            return GatewayStream(call, credentials, events, summary, first)
        result = adapter.create_message(
            api_key=credentials.api_key,
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            system=system,
        )
    except ProviderError as error:
        raise _on_provider_error(call, credentials, error) from None
    except BaseException:
        call.release()
        raise
    row, charged = call.finish(usage=result.usage, request_id=result.request_id)
    return MessageResponse(
        body=result.body,
        credential_source=credentials.source,
        credits_charged=charged,
        usage=result.usage,
        ai_request=row,
    )


def _hold_credits(call: _Call, *, messages: Any, system: Any, max_tokens: int) -> None:
    amount = pricing.max_cost(
        call.price,
        input_tokens=pricing.estimate_input_tokens(messages, system),
        max_tokens=max_tokens,
    )
    try:
        call.hold = ledger.credits_hold(
            workspace=call.workspace,
            amount=amount,
            idempotency_key=f"ai-request:{uuid.uuid4().hex}",
        )
    except LedgerInsufficientError as exc:
        raise call.fail(
            InsufficientCreditsError(
                f"Not enough AI credits: this request can cost up to {amount:,} credits and the "
                f"workspace has {exc.balance:,}. Lower max_tokens, ask a workspace admin to add "
                "credits, or save your own Anthropic key in Workspace Settings → LLM Key."
            )
        ) from None


class GatewayStream:
    """The events of a streamed AI request, relayed as the provider sends them.

    The request settles when the final event arrives. A provider error mid-stream raises a
    GatewayError and releases the hold; a consumer that stops early (``close()``, which
    Django calls when a client goes away) releases it too. Either way one usage row is written.
    """

    def __init__(
        self,
        call: _Call,
        credentials: Credentials,
        events: Iterator[StreamEvent],
        summary: StreamSummary,
        first: StreamEvent | None,
    ):
        self._call = call
        self._credentials = credentials
        self._events = events
        self._summary = summary
        self._pending = first
        self._finished = False
        self.credential_source = credentials.source
        self.credits_charged = 0
        self.ai_request: AIRequest | None = None
        if first is None:
            self._finish()

    def __iter__(self) -> GatewayStream:
        return self

    def __next__(self) -> StreamEvent:
        if self._pending is not None:
            event, self._pending = self._pending, None
        elif self._finished:
            raise StopIteration
        else:
            try:
                event = next(self._events)
            except StopIteration:
                self._finish()
                raise
            except ProviderError as error:
                self._finished = True
                raise _on_provider_error(self._call, self._credentials, error) from None
            except BaseException:
                self._abort(Outcome.PROVIDER_ERROR)
                raise
        if event.event == "message_stop":
            self._finish()
        return event

    @property
    def usage(self) -> Usage:
        return self._summary.usage

    def close(self) -> None:
        """Stop early: close the provider stream, release the hold, record the disconnect."""
        if not self._finished:
            self._abort(Outcome.CLIENT_DISCONNECTED)
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def _abort(self, outcome: str) -> None:
        self._finished = True
        self._call.release()
        self.ai_request = self._call.record(
            outcome=outcome, usage=self._summary.usage, request_id=self._summary.request_id
        )

    def _finish(self) -> None:
        self._finished = True
        self.ai_request, self.credits_charged = self._call.finish(
            usage=self._summary.usage, request_id=self._summary.request_id
        )
