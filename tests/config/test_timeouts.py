import pytest

from providers.anthropic import shared_client


@pytest.mark.parametrize("seconds", [5.0, 7.5, 600.0])
def test_ai_request_timeout_is_handed_to_the_client(settings, seconds):
    # 5 s equals httpx's default, which the SDK used to take for "not set" (and use 600 s).
    settings.AI_REQUEST_TIMEOUT_SECONDS = seconds
    settings.AI_HTTP_POOL_SIZE = 20 + int(seconds)  # a fresh client for this setting
    assert shared_client().timeout == seconds
