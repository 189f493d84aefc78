"""The relay passes on whole server-sent events only, whatever line ending the provider uses."""

from ai_gateway.services import events_end


def test_no_whole_event_yet_relays_nothing():
    assert events_end(b'event: content_block_delta\ndata: {"a"') == 0


def test_the_last_whole_event_ends_after_its_blank_line():
    data = b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: c\nda"
    assert data[: events_end(data)] == b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\n"


def test_crlf_events_as_google_sends_them():
    data = b'data: {"candidates": []}\r\n\r\ndata: {"cand'
    assert data[: events_end(data)] == b'data: {"candidates": []}\r\n\r\n'
