"""An error the SDK raises before anything is sent is the client's 400, not a 5xx."""

import anthropic
import httpx2
import pytest

from providers.anthropic import translate_error


def _connection_error(cause: Exception) -> anthropic.APIConnectionError:
    try:
        raise anthropic.APIConnectionError(
            request=httpx2.Request("POST", "http://127.0.0.1/v1/messages")
        ) from cause
    except anthropic.APIConnectionError as error:
        return error


@pytest.mark.parametrize(
    "error",
    [
        TypeError("Object of type set is not JSON serializable"),
        RecursionError("maximum recursion depth exceeded"),
        _connection_error(httpx2.LocalProtocolError("Illegal header value b'a\\r\\nb'")),
    ],
)
def test_a_local_sdk_error_is_an_invalid_request(error):
    translated = translate_error(error)

    assert (translated.http_status, translated.error_type) == (400, "invalid_request_error")


def test_a_connection_failure_is_still_the_providers_unavailability():
    translated = translate_error(_connection_error(httpx2.ConnectError("refused")))

    assert translated.http_status == 503
