"""Streamed AI requests: the provider's events relayed in order, usage settled from the final
event, and a stream the provider breaks or the client abandons charged for what the provider
produced, the rest of the hold released."""

import asyncio
import contextlib
import json

from asgiref.sync import async_to_sync, sync_to_async

from ai_gateway import services
from ai_gateway.models import AIRequest
from credits.selectors import credits_balance
from tests.factories import fake_key

from .helpers import body, ledger, post_streamed, streamed


def parse_sse(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def stream_body(**overrides):
    return body(stream=True, **overrides)


def test_events_are_relayed_in_order_and_settled_from_the_final_event(
    member_client, workspace, funded, standin, platform_key
):
    response = post_streamed(member_client, stream_body())

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = parse_sse(streamed(response))
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-4:] == ["content_block_stop", "message_delta", "message_stop", "gateway"]
    assert set(names[3:-4]) == {"content_block_delta"}
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == "Stand-in reply to: Say hello"

    final_output = events[-3][1]["usage"]["output_tokens"]
    assert final_output > events[0][1]["message"]["usage"]["output_tokens"]
    stop = events[-1][1]
    assert stop == {
        "type": "gateway",
        "credential_source": "platform",
        "credits_charged": stop["credits_charged"],
    }
    row = AIRequest.objects.get(workspace=workspace)
    assert (row.outcome, row.stream, row.output_tokens) == ("ok", True, final_output)
    assert row.credits_charged == stop["credits_charged"] > 0
    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "settle"]
    assert credits_balance(workspace=workspace) == funded - row.credits_charged
    assert standin.keys_seen() == [platform_key]
    assert standin.requests[0].body["stream"] is True


def test_byok_stream_uses_the_workspace_key_and_charges_nothing(
    member_client, workspace, saved_key, funded, standin
):
    response = post_streamed(member_client, stream_body())

    events = parse_sse(streamed(response))
    assert events[-1][1]["credential_source"] == "byok"
    assert events[-1][1]["credits_charged"] == 0
    assert [r.api_key for r in standin.requests if r.path == "/v1/messages"] == [saved_key.raw]
    assert ledger(workspace) == [("grant", funded)]
    assert AIRequest.objects.get(workspace=workspace).credential_source == "byok"


def test_provider_error_mid_stream_is_relayed_and_charges_what_was_produced(
    member_client, workspace, funded, standin, platform_key
):
    standin.set_behavior(platform_key, "streamerror")

    response = post_streamed(member_client, stream_body())

    assert response.status_code == 200
    events = parse_sse(streamed(response))
    names = [name for name, _ in events]
    assert names[-2:] == ["error", "gateway"]
    assert events[-2][1]["error"]["type"] == "overloaded_error"  # the provider's own event
    assert "content_block_delta" in names
    row = AIRequest.objects.get(workspace=workspace)
    assert (row.outcome, row.provider_error_type, row.stream) == (
        "provider_error",
        "overloaded_error",
        True,
    )
    assert row.input_tokens > 0 and row.output_tokens >= 2  # two words were relayed
    assert row.credits_charged == events[-1][1]["credits_charged"] > 0
    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "settle"]
    assert credits_balance(workspace=workspace) == funded - row.credits_charged


def _begin(workspace, user, **overrides):
    return services.call_begin(
        workspace=workspace,
        user=user,
        body=stream_body(messages=[{"role": "user", "content": "one two three four five"}]),
        **overrides,
    )


async def _open(call):
    return await services.astream_message(call, body=call_body(), headers={}, trailer=False)


def call_body():
    return stream_body(messages=[{"role": "user", "content": "one two three four five"}])


def test_client_closing_the_stream_charges_what_was_produced(
    workspace, member_user, funded, standin
):
    call = _begin(workspace, member_user)

    async def read_one_chunk_and_leave():
        stream = await _open(call)
        chunks = aiter(stream)
        first = await anext(chunks)
        await chunks.aclose()  # what Django does to a response whose client went away
        return first

    first = async_to_sync(read_one_chunk_and_leave)()

    assert first.startswith(b"event: message_start")
    row = AIRequest.objects.get(workspace=workspace)
    assert row.outcome == "client_disconnected"
    assert row.input_tokens > 0  # what the provider reported before the client left
    assert row.credits_charged > 0
    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "settle"]
    assert credits_balance(workspace=workspace) == funded - row.credits_charged


def test_a_cancelled_relay_settles_once(workspace, member_user, funded, standin):
    call = _begin(workspace, member_user)

    async def cancel_mid_stream():
        stream = await _open(call)
        received = []

        async def relay():
            # As Django's ASGI handler relays a streaming response: the iterator is closed
            # when the relay ends, also when it is cancelled.
            async with contextlib.aclosing(aiter(stream)) as chunks:
                async for chunk in chunks:
                    received.append(chunk)
                    await asyncio.sleep(3600)  # a client that stopped reading

        task = asyncio.ensure_future(relay())
        while not received:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # What Django's ASGI handler does once the response task has ended.
        await sync_to_async(stream.close)()
        await sync_to_async(stream.close)()  # a second close changes nothing

    async_to_sync(cancel_mid_stream)()

    row = AIRequest.objects.get(workspace=workspace)
    assert row.outcome == "client_disconnected"
    kinds = [kind for kind, _ in ledger(workspace)]
    assert kinds == ["grant", "hold", "settle"]


def test_client_gone_before_the_first_chunk_releases_the_whole_hold(
    workspace, member_user, funded, standin
):
    call = _begin(workspace, member_user)

    async def leave_at_once():
        stream = await _open(call)
        await sync_to_async(stream.close)()

    async_to_sync(leave_at_once)()

    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "release"]
    assert credits_balance(workspace=workspace) == funded
    assert AIRequest.objects.get(workspace=workspace).outcome == "client_disconnected"


def test_full_consumption_settles_once(workspace, member_user, funded, standin):
    call = _begin(workspace, member_user)

    async def consume():
        stream = await _open(call)
        chunks = [chunk async for chunk in stream]
        return stream, b"".join(chunks)

    stream, raw = async_to_sync(consume)()

    assert parse_sse(raw)[-1][0] == "message_stop"  # no trailer on this stream
    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "settle"]
    row = AIRequest.objects.get(workspace=workspace)
    assert row.outcome == "ok"
    assert stream.credits_charged == row.credits_charged > 0


def test_refusal_before_the_stream_is_a_plain_error(member_client, workspace, standin):
    response = post_streamed(member_client, stream_body())

    assert response.status_code == 402
    assert response.json()["error"]["type"] == "insufficient_credits"


def test_byok_key_rejected_on_stream_start_is_409(member_client, workspace, admin_user, standin):
    from llm_keys.services import Actor, llm_key_set

    llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user), check=False)
    key = workspace.llm_keys.get()
    standin.state.hint_behaviors[key.hint] = "revoked"

    response = post_streamed(member_client, stream_body())

    assert response.status_code == 409
    assert response.json()["error"]["type"] == "llm_key_invalid"
    key.refresh_from_db()
    assert key.status == "invalid"


def test_a_stream_its_reservation_fully_covers_is_priced_once(
    member_client, workspace, funded, standin, monkeypatch
):
    # max_tokens 100 is within the first output allowance: the first reservation is the
    # request's worst case, so no later look could extend or cut it (decision 109). Before,
    # once the output neared the reservation, every chunk was priced again.
    from ai_gateway.streams import GatewayStream

    looks = []
    meter = GatewayStream._meter

    async def counted(self):
        looks.append(self._stream.summary.output_tokens_seen)
        return await meter(self)

    monkeypatch.setattr(GatewayStream, "_meter", counted)
    standin.state.answer_words = 90

    response = post_streamed(member_client, stream_body(max_tokens=100))

    kinds = [kind for kind, _ in parse_sse(streamed(response))]
    assert kinds.count("content_block_delta") >= 90 and "message_stop" in kinds
    row = AIRequest.objects.get(workspace=workspace)
    assert row.outcome == "ok" and row.output_tokens >= 90
    assert len(looks) == 1, looks
    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "settle"]
