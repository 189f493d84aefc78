"""Every way a credit-paid request can end, in one table (issue 19, item 7): each writes
exactly one usage row, closes its reservation once (settled or released), charges what the
provider billed (or a bound covering it, never 0 once the provider produced something), and
leaves the ledger equal to the balance with no request counted as in progress.

A worker killed mid-request is the one ending no code of the request runs for: the sweep
charges its whole reservation and writes its usage row (decision 107;
tests/ai_gateway/test_process_died.py, tests/served_app/test_metering_served.py).
"""

import json
from dataclasses import dataclass, field

import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError
from django.db.models import Sum

from ai_gateway import leases
from ai_gateway import services as gateway
from ai_gateway.models import AIRequest
from credits import services as ledger_services
from credits.models import CreditAccount, CreditEntry, CreditReservation
from credits.selectors import credits_balance

from .helpers import body, post, post_streamed, streamed

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Ending:
    name: str
    outcome: str
    charged: str  # "usage" (> 0, what the provider billed), "none" (0), "reservation"
    stream: bool = True
    request: dict = field(default_factory=dict)
    standin: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    behavior: str = "ok"
    leave_after_chunks: int | None = None
    error_event: str | None = None
    settlement_fails_once: bool = False


ENDINGS = [
    Ending("completed, plain", "ok", "usage", stream=False),
    Ending("completed, streamed", "ok", "usage"),
    Ending(
        "client left mid-stream",
        "client_disconnected",
        "usage",
        standin={"stream_word_delay": 0.05},
        leave_after_chunks=2,
    ),
    Ending("provider broke the stream", "provider_error", "usage", behavior="streamerror"),
    Ending("provider error before any byte", "provider_error", "none", behavior="servererror"),
    Ending(
        "provider timed out",
        "provider_error",
        "none",
        stream=False,
        behavior="timeout",
        settings={"AI_REQUEST_TIMEOUT_SECONDS": 0.5},
    ),
    Ending(
        "stream cap reached",
        "timed_out",
        "usage",
        standin={"answer_words": 60, "stream_word_delay": 0.05},
        settings={"AI_STREAM_MAX_SECONDS": 1.0},
        error_event="timeout_error",
    ),
    Ending(
        "stream cap reached while the provider is silent",
        "timed_out",
        "usage",
        standin={"answer_words": 4, "stream_word_delay": 2.0},
        settings={"AI_STREAM_MAX_SECONDS": 0.6},
        error_event="timeout_error",
    ),
    Ending(
        "credits ran out",
        "credits_exhausted",
        "usage",
        request={"max_tokens": 8_000},
        standin={"answer_words": 3_000},
        error_event="insufficient_credits",
    ),
    Ending(
        "usage garbled, plain",
        "usage_unverified",
        "reservation",
        stream=False,
        standin={"usage_override": {"output_tokens": "12"}},
    ),
    Ending(
        "usage garbled, streamed",
        "usage_unverified",
        "reservation",
        standin={"usage_override": {"input_tokens": -5}},
    ),
    Ending(
        "usage missing",
        "usage_unverified",
        "reservation",
        stream=False,
        standin={"usage_override": {"input_tokens": 0}},
    ),
    Ending(
        "usage absurdly large",
        "usage_unverified",
        "reservation",
        standin={"usage_override": {"output_tokens": 10**12}},
    ),
    Ending(
        "database unreachable at settlement",
        "ok",
        "usage",
        stream=False,
        settlement_fails_once=True,
    ),
]


def _ask(member_client, ending: Ending) -> bytes:
    data = body(stream=ending.stream, **ending.request)
    if ending.leave_after_chunks is None:
        response = (post_streamed if ending.stream else post)(member_client, data)
        return streamed(response) if ending.stream else response.content
    call = gateway.call_begin(workspace=_workspace(), user=_member(member_client), body=data)

    async def read_some_and_leave():
        stream = await gateway.astream_message(call, body=data, headers={}, trailer=False)
        chunks = aiter(stream)
        received = [await anext(chunks) for _ in range(ending.leave_after_chunks)]
        await chunks.aclose()  # what Django does to a response whose client went away
        return b"".join(received)

    return async_to_sync(read_some_and_leave)()


def _workspace():
    from workspaces.models import Workspace

    return Workspace.objects.get(slug="acme")


def _member(client):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=client.session["_auth_user_id"])


@pytest.mark.parametrize("ending", ENDINGS, ids=[e.name for e in ENDINGS])
def test_every_ending_charges_once_with_one_row(
    ending, member_client, workspace, standin, settings, platform_key, monkeypatch
):
    funded = 1_000_000 if ending.outcome != "credits_exhausted" else 400
    ledger_services.credits_grant(workspace=workspace, amount=funded, reason="test")
    for name, value in ending.settings.items():
        setattr(settings, name, value)
    for name, value in ending.standin.items():
        if name == "usage_override":
            standin.set_usage_override(value)
        else:
            setattr(standin.state, name, value)
    standin.set_behavior(platform_key, ending.behavior)
    standin.state.timeout_sleep = 3.0
    if ending.settlement_fails_once:
        real_settle = ledger_services.credits_settle
        calls = []

        def unreachable_once(**kwargs):
            calls.append(kwargs)
            if len(calls) == 1:
                raise OperationalError("connection refused")
            return real_settle(**kwargs)

        monkeypatch.setattr(ledger_services, "credits_settle", unreachable_once)

    raw = _ask(member_client, ending)

    if ending.settlement_fails_once:
        assert not AIRequest.objects.exists()  # answered, settlement pending
        assert leases.keeper.settle_deferred() == 0  # the database is back
    [row] = AIRequest.objects.filter(workspace=workspace)
    assert row.outcome == ending.outcome, raw[-400:]
    [reservation] = CreditReservation.objects.filter(workspace=workspace)
    assert reservation.state != "open"
    if ending.charged == "none":
        assert row.credits_charged == 0 and reservation.state == "released"
    elif ending.charged == "reservation":
        assert row.credits_charged == reservation.held > 0
    else:
        assert row.credits_charged > 0 and reservation.state == "settled"
    if ending.error_event:
        events = raw.decode().strip().split("\n\n")
        last = [e for e in events if not e.startswith("event: gateway")][-1]
        assert last.startswith("event: error"), last
        assert json.loads(last.split("data: ", 1)[1])["error"]["type"] == ending.error_event
    total = CreditEntry.objects.filter(workspace=workspace).aggregate(s=Sum("amount"))["s"]
    assert credits_balance(workspace=workspace) == total == funded - row.credits_charged
    assert CreditAccount.objects.get(workspace=workspace).open_reservations == 0


def test_a_client_that_stops_reading_is_cut_after_the_write_timeout(
    member_client, workspace, standin, settings
):
    ledger_services.credits_grant(workspace=workspace, amount=1_000_000, reason="test")
    settings.AI_STREAM_WRITE_TIMEOUT_SECONDS = 0.3
    standin.state.answer_words = 400  # more events than the relay queue holds
    data = body(stream=True, max_tokens=2_000)
    call = gateway.call_begin(workspace=workspace, user=_member(member_client), body=data)

    async def read_one_then_stall():
        import asyncio

        stream = await gateway.astream_message(call, body=data, headers={}, trailer=False)
        chunks = aiter(stream)
        await anext(chunks)
        for _ in range(100):  # the client reads nothing more; the request ends without it
            if call.result is not None:
                break
            await asyncio.sleep(0.1)
        await chunks.aclose()

    async_to_sync(read_one_then_stall)()
    [row] = AIRequest.objects.filter(workspace=workspace)
    assert row.outcome == "client_disconnected" and row.credits_charged > 0
    assert CreditReservation.objects.get(workspace=workspace).state == "settled"


def test_a_member_limit_running_out_mid_stream_is_told_as_the_member_limit(
    member_client, workspace, standin
):
    ledger_services.credits_grant(workspace=workspace, amount=1_000_000, reason="test")
    member = _member(member_client)
    ledger_services.credits_member_limit_set(workspace=workspace, member=member, monthly_limit=400)
    standin.state.answer_words = 3_000  # far more than 400 credits buy

    raw = streamed(post_streamed(member_client, body(stream=True, max_tokens=8_000)))

    events = raw.decode().strip().split("\n\n")
    last = [e for e in events if not e.startswith("event: gateway")][-1]
    assert last.startswith("event: error"), last
    error = json.loads(last.split("data: ", 1)[1])["error"]
    assert error["type"] == "member_credit_limit"
    assert "monthly AI credits limit" in error["message"] and "ran out" not in error["message"]
    [row] = AIRequest.objects.filter(workspace=workspace)
    assert row.outcome == "credits_exhausted" and row.credits_charged > 0
    assert credits_balance(workspace=workspace) == 1_000_000 - row.credits_charged


def test_a_stream_that_writes_its_max_tokens_is_not_extended_past_them(
    member_client, workspace, standin
):
    """The output estimated from the deltas (a token per three characters, at least one per
    delta) runs above ``max_tokens``; the provider bills no more than that, so a stream whose
    first reservation is its worst case is never extended."""
    ledger_services.credits_grant(workspace=workspace, amount=1_000_000, reason="test")
    standin.state.answer_words = 1_000  # cut at max_tokens, as the API does

    raw = streamed(post_streamed(member_client, body(stream=True, max_tokens=300)))

    assert b"message_stop" in raw
    entries = CreditEntry.objects.filter(workspace=workspace).order_by("id")
    kinds = list(entries.values_list("kind", flat=True))
    assert kinds == ["grant", "hold", "settle"]
    [row] = AIRequest.objects.filter(workspace=workspace)
    assert row.outcome == "ok" and row.credits_charged > 0
