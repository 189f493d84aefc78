"""config/broker.py overrides Kombu's private ``Channel._create_client`` (decision 133): no
documented hook lets a transport keep one Redis client. These tests fail when a Kombu
upgrade makes the override dead (the method renamed or no longer called per command) or
needless (stock Kombu no longer builds a client per command): then drop config/broker.py."""

import os
import uuid

import pytest
import redis
from kombu.transport import redis as kombu_redis

from bench.broker_clients import measure
from config import broker

REDIS_URL = os.environ.get("BROKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


@pytest.fixture
def redis_url():
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.skip(f"needs Redis at {REDIS_URL}")
    return REDIS_URL


def _clients_built_per_message(url: str, transport: type) -> float:
    _cpu, built = measure(transport, url=url, name=f"test-broker-{uuid.uuid4().hex}", messages=10)
    return built


def test_the_project_transport_builds_no_client_per_message(redis_url):
    assert _clients_built_per_message(redis_url, broker.Transport) == 0


def test_stock_kombu_still_builds_clients_per_message(redis_url):
    """When this fails, Kombu reuses its client itself and config/broker.py can go."""
    assert _clients_built_per_message(redis_url, kombu_redis.Transport) >= 2
