"""A streamed AI request, relayed from the provider to the client as whole server-sent
events, metered as it streams and ended in one place (``GatewayStream``; decisions 101, 103
and 109). ``ai_gateway.services`` begins the request and opens the provider's stream; this
module relays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from django.conf import settings

from credits import services as ledger
from providers import MessageStream, ProviderError, Usage

from . import metering
from .database import database_section
from .errors import (
    CreditsRefusedError,
    GatewayError,
    MemberLimitRefusedError,
    StreamTimedOutError,
)
from .models import AIRequest, CredentialSource, Outcome

if TYPE_CHECKING:
    from .services import AICall


def _told(error: ProviderError, call: AICall) -> GatewayError:
    """What the client is told of the provider's error (``services.provider_failed``)."""
    from .services import provider_failed  # services imports this module

    return provider_failed(error, source=call.source)


_BACKGROUND: set[asyncio.Task] = set()


def _background(work) -> asyncio.Task:
    """Run ``work`` in a task of its own, kept until it is done."""
    task = asyncio.get_running_loop().create_task(work)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


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
        # Hidden work: the task reading the provider's stream ahead, and what it read.
        self._reader: asyncio.Task | None = None
        self._ahead: asyncio.Queue[bytes | BaseException] | None = None
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
            notice = _told(broken, self.call)
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
        if self.call.hidden_work:
            self._ahead = asyncio.Queue(maxsize=1)
            self._reader = _background(self._read_ahead())

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
        """The provider's next chunk: read here, or, with hidden work, taken from the reader
        that reads it ahead (``_read_ahead``)."""
        self._reading = True
        try:
            if self._ahead is None:
                return await anext(self._chunks)
            read = await self._ahead.get()
            if isinstance(read, BaseException):
                raise read
            return read
        finally:
            self._reading = False

    async def _read_ahead(self) -> None:
        """A hidden-work stream's provider reads, in one task for the stream's life (at most
        a chunk ahead of the client): the client's leaving cancels only its wait for the next
        chunk, never a read, so the stream is read on without it. The stream's end (or its
        break) is passed on as the exception ``_read`` raises."""
        try:
            async for chunk in self._chunks:
                await self._ahead.put(chunk)
            ended: BaseException = StopAsyncIteration()
        except Exception as broken:  # noqa: BLE001 - raised again by the reading side
            ended = broken
        await self._ahead.put(ended)

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
                    await self._read()
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
        if call.covers_the_rest(usage):
            self._look_at = math.inf  # nothing the stream can still produce needs a look
            return None
        self._look_at = summary.output_tokens_seen + metering.output_before_next_look(
            held=call.held,
            produced=produced,
            refused=call.extension_refused,
            per_token=call.output_token_cost(usage),
        )
        return None

    def _seen(self) -> Usage:
        """The usage so far: the provider's, with the output estimated from the deltas relayed
        (never above what the request lets the provider write: the estimate's error, which
        would extend a short request's reservation for nothing)."""
        summary = self._stream.summary
        usage = summary.usage
        seen = summary.output_tokens_seen
        if self.call.output_bound:
            seen = min(seen, self.call.output_bound)
        if summary.finished or seen <= usage.output_tokens:
            return usage
        return dataclasses.replace(usage, output_tokens=seen)

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
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        await self._stream.aclose()
        summary = self._stream.summary
        failure = _told(error, self.call) if error is not None else None
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
