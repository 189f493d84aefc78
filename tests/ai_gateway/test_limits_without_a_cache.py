"""An unreachable cache does not stop the API (decision 126): the limits are not counted,
the request goes on, and the server log says so."""

import logging

import pytest
from django.test import override_settings

from ai_gateway.limits import api_request_admit
from tests.factories import api_token_for

pytestmark = pytest.mark.django_db

NOWHERE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
    }
}


def test_an_unreachable_cache_admits_the_request_and_logs_it(workspace, caplog):
    token, _raw = api_token_for(workspace)

    with override_settings(CACHES=NOWHERE), caplog.at_level(logging.ERROR):
        slots = api_request_admit(token=token)
        slots.release()

    assert slots.keys == []
    assert "API limits not counted: the cache is unreachable" in caplog.text
