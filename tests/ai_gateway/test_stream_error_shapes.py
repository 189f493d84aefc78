"""The notice that ends a stream early, in each provider's own stream shape (decision 147)."""

import json
from types import SimpleNamespace

from openai.types.responses import ResponseErrorEvent

from ai_gateway.errors import CreditsRefusedError, StreamTimedOutError
from ai_gateway.provider_errors import (
    gemini_stream_error,
    openai_stream_error,
    responses_stream_error,
)
from ai_gateway.services import sse_error


def test_openai_notice_is_a_data_event_holding_an_error_object():
    event = openai_stream_error(CreditsRefusedError("Credits ran out."))

    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    assert b"event:" not in event
    error = json.loads(event.removeprefix(b"data: "))["error"]
    assert error["code"] == "insufficient_credits"
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("Credits ran out.")


def test_responses_notice_is_the_responses_apis_error_event_numbered_next():
    provider_stream = SimpleNamespace(next_sequence_number=17)
    event = responses_stream_error(CreditsRefusedError("Credits ran out."), provider_stream)

    head, _, data = event.partition(b"\n")
    assert head == b"event: error" and event.endswith(b"\n\n")
    parsed = ResponseErrorEvent.model_validate(json.loads(data.removeprefix(b"data: ")))
    assert (parsed.type, parsed.code, parsed.sequence_number) == (
        "error",
        "insufficient_credits",
        17,
    )
    assert parsed.message.startswith("Credits ran out.")


def test_gemini_notice_is_a_google_rpc_status_with_crlf_endings():
    event = gemini_stream_error(StreamTimedOutError("Too long."))

    assert event.startswith(b"data: ") and event.endswith(b"\r\n\r\n")
    error = json.loads(event.removeprefix(b"data: "))["error"]
    assert (error["code"], error["status"]) == (504, "DEADLINE_EXCEEDED")
    assert error["message"].startswith("Too long.")
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"


def test_anthropic_notice_is_unchanged():
    event = sse_error(CreditsRefusedError("Credits ran out."))

    assert event.startswith(b"event: error\ndata: ")
