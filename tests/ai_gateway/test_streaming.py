"""Streamed AI requests: events relayed in order, usage settled from the final event, and the
hold released when the provider fails mid-stream or the client goes away."""

import json
from unittest import mock

import pytest
from django.db import connections

from ai_gateway import services
from ai_gateway.errors import ProviderFailedError
from ai_gateway.models import AIRequest
from credits.selectors import credits_balance
from tests.factories import fake_key

from .helpers import MODEL, body, ledger, post


def parse_sse(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def client_goes_away(response) -> None:
    """Close the response as the WSGI server does when the client disconnects.

    Closing fires request_finished, whose close_old_connections would close the test's
    database connection (it is inside the test's transaction); keep it open, as Django's
    test client does for the responses it closes itself.
    """
    with mock.patch.object(connections["default"], "close_if_unusable_or_obsolete"):
        response.close()


def stream_body(**overrides):
    return body(stream=True, **overrides)


def test_events_are_relayed_in_order_and_settled_from_the_final_event(
    member_client, workspace, funded, standin, platform_key
):
    response = post(member_client, stream_body())

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = parse_sse(b"".join(response.streaming_content))
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[2:-3]) == {"content_block_delta"}
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == "Stand-in reply to: Say hello"

    final_output = events[-2][1]["usage"]["output_tokens"]
    assert final_output > events[0][1]["message"]["usage"]["output_tokens"]
    stop = events[-1][1]
    assert stop["credential_source"] == "platform"
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
    response = post(member_client, stream_body())

    events = parse_sse(b"".join(response.streaming_content))
    assert events[-1][1]["credential_source"] == "byok"
    assert events[-1][1]["credits_charged"] == 0
    assert [r.api_key for r in standin.requests if r.path == "/v1/messages"] == [saved_key.raw]
    assert ledger(workspace) == [("grant", funded)]
    assert AIRequest.objects.get(workspace=workspace).credential_source == "byok"


def test_provider_error_mid_stream_releases_the_hold(
    member_client, workspace, funded, standin, platform_key
):
    standin.set_behavior(platform_key, "streamerror")

    response = post(member_client, stream_body())

    assert response.status_code == 200
    events = parse_sse(b"".join(response.streaming_content))
    name, data = events[-1]
    assert name == "error"
    assert data["error"]["type"] == "provider_unavailable"
    assert "Nothing was charged" in data["error"]["message"]
    assert "content_block_delta" in [n for n, _ in events]
    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "release"]
    assert credits_balance(workspace=workspace) == funded
    row = AIRequest.objects.get(workspace=workspace)
    assert (row.outcome, row.credits_charged, row.stream) == ("provider_error", 0, True)


def test_client_disconnect_releases_the_hold(member_client, workspace, funded, standin):
    response = post(member_client, stream_body())
    chunks = iter(response.streaming_content)
    first = next(chunks)
    assert first.startswith(b"event: message_start")

    client_goes_away(response)

    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "release"]
    assert credits_balance(workspace=workspace) == funded
    row = AIRequest.objects.get(workspace=workspace)
    assert (row.outcome, row.credits_charged) == ("client_disconnected", 0)
    assert row.input_tokens > 0  # what the provider reported before the client left


def test_client_gone_before_the_first_chunk_releases_the_hold(
    member_client, workspace, funded, standin
):
    response = post(member_client, stream_body())
    client_goes_away(response)

    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "release"]
    assert AIRequest.objects.get(workspace=workspace).outcome == "client_disconnected"


def test_refusal_before_the_stream_is_a_plain_error(member_client, workspace, standin):
    response = post(member_client, stream_body())

    assert response.status_code == 402
    assert response.json()["error"]["type"] == "insufficient_credits"


def test_byok_key_rejected_on_stream_start_is_409(member_client, workspace, admin_user, standin):
    from llm_keys.services import Actor, llm_key_set

    llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user), check=False)
    key = workspace.llm_keys.get()
    standin.state.hint_behaviors[key.hint] = "revoked"

    response = post(member_client, stream_body())

    assert response.status_code == 409
    assert response.json()["error"]["type"] == "llm_key_invalid"
    key.refresh_from_db()
    assert key.status == "invalid"


# --- the Python entry point -------------------------------------------------------------------


def _stream(workspace, user):
    return services.create_message(
        workspace=workspace,
        user=user,
        model=MODEL,
        messages=[{"role": "user", "content": "one two three four five"}],
        max_tokens=50,
        stream=True,
    )


def test_consumer_stopping_early_releases_the_hold(workspace, member_user, funded, standin):
    stream = _stream(workspace, member_user)
    events = iter(stream)
    assert next(events).event == "message_start"
    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold"]

    stream.close()
    stream.close()  # idempotent

    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "release"]
    assert AIRequest.objects.get(workspace=workspace).outcome == "client_disconnected"


def test_generator_exit_in_a_consuming_generator_releases_the_hold(
    workspace, member_user, funded, standin
):
    def relay():
        stream = _stream(workspace, member_user)
        try:
            yield from stream
        finally:
            stream.close()

    consumer = relay()
    next(consumer)
    consumer.close()  # GeneratorExit inside relay()

    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "release"]


def test_full_consumption_settles_once(workspace, member_user, funded, standin):
    stream = _stream(workspace, member_user)
    events = list(stream)
    stream.close()

    assert events[-1].event == "message_stop"
    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "settle"]
    row = AIRequest.objects.get(workspace=workspace)
    assert row.outcome == "ok"
    assert stream.credits_charged == row.credits_charged > 0


def test_mid_stream_error_raises_a_typed_error(workspace, member_user, funded, standin, settings):
    standin.set_behavior(settings.PLATFORM_ANTHROPIC_API_KEY, "streamerror")
    stream = _stream(workspace, member_user)

    with pytest.raises(ProviderFailedError) as raised:
        list(stream)

    assert raised.value.http_status == 503
    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "release"]
