"""The validation probe through the real SDK against the stand-in: SPEC §6 classification."""

import socket

import pytest

from providers import CheckOutcome, get_adapter
from providers.anthropic import shared_client
from tests.factories import fake_key


@pytest.mark.parametrize(
    "marker,outcome,status",
    [
        ("", CheckOutcome.VALID, 200),
        ("ratelimited", CheckOutcome.VALID, 429),
        ("revoked", CheckOutcome.INVALID, 401),
        ("forbidden", CheckOutcome.INVALID, 403),
        ("requesttimeout", CheckOutcome.UNKNOWN, 408),
        ("conflict", CheckOutcome.UNKNOWN, 409),
        ("servererror", CheckOutcome.UNKNOWN, 500),
        ("overloaded", CheckOutcome.UNKNOWN, 529),
        ("timeout", CheckOutcome.UNKNOWN, None),
    ],
)
def test_classification(standin, marker, outcome, status):
    key = fake_key(marker)
    result = get_adapter("anthropic").validate(key)
    assert (result.outcome, result.status_code) == (outcome, status)
    # One probe, no SDK retries, the key in the auth header and never in the URL.
    assert len(standin.requests) == 1
    probe = standin.requests[0]
    assert (probe.method, probe.path) == ("GET", "/v1/models?limit=1")
    assert probe.api_key == key
    assert key not in probe.path


def test_reasons_say_what_happened(standin):
    adapter = get_adapter("anthropic")
    assert "revoked, has expired or is mistyped" in adapter.validate(fake_key("revoked")).reason
    assert "lacks permission" in adapter.validate(fake_key("forbidden")).reason
    assert "overloaded" in adapter.validate(fake_key("overloaded")).reason


def test_an_unreachable_provider_is_unknown(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.ANTHROPIC_BASE_URL = f"http://127.0.0.1:{port}"
    result = get_adapter("anthropic").validate(fake_key())
    assert result.outcome == CheckOutcome.UNKNOWN
    assert "Could not connect" in result.reason


def test_the_shared_client_carries_no_key_of_its_own(standin):
    # A request that forgot with_options(api_key=...) must fail here, not go out unauthenticated
    # or under another credential.
    with pytest.raises(TypeError, match="authentication"):
        shared_client().models.list(limit=1)
    assert standin.requests == []


def test_one_pool_serves_many_keys(standin):
    adapter = get_adapter("anthropic")
    for _ in range(20):
        adapter.validate(fake_key())
    # At most one new connection (none when an earlier test left one open in the pool).
    assert standin.state.connections <= 1
    assert len(standin.requests) == 20
