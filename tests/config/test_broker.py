"""config/broker.py overrides Kombu's private ``Channel._create_client`` (decision 133): no
documented hook lets a transport keep one Redis client. These tests fail when a Kombu
upgrade makes the override dead (the method renamed or no longer called per command) or
needless (stock Kombu no longer builds a client per command): then drop config/broker.py."""

import os
import uuid

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis

from config import broker

REDIS_URL = os.environ.get("BROKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
MESSAGES = 10


@pytest.fixture
def redis_url():
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.skip(f"needs Redis at {REDIS_URL}")
    return REDIS_URL


def _clients_built_per_message(url: str, transport: type, monkeypatch) -> float:
    """Publish, deliver and ack messages through ``transport``; count the ``redis.Redis``
    objects built after the first message (the channel's setup)."""
    built = []
    init = redis.Redis.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        init(self, *args, **kwargs)

    name = f"test-broker-{uuid.uuid4().hex}"
    queue = Queue(name, Exchange(name), routing_key=name)
    received = []
    with Connection(url, transport=transport) as conn:
        producer = conn.Producer()
        consumer = conn.Consumer(queue, callbacks=[lambda _body, msg: received.append(msg.ack())])
        consumer.consume()
        try:
            producer.publish({"n": 0}, exchange=queue.exchange, routing_key=name, declare=[queue])
            conn.drain_events(timeout=5)
            monkeypatch.setattr(redis.Redis, "__init__", counting_init)
            for n in range(MESSAGES):
                producer.publish({"n": n}, exchange=queue.exchange, routing_key=name)
            while len(received) < MESSAGES + 1:
                conn.drain_events(timeout=5)
        finally:
            monkeypatch.undo()
            consumer.cancel()
            queue(conn.default_channel).delete()
    return len(built) / MESSAGES


def test_the_project_transport_builds_no_client_per_message(redis_url, monkeypatch):
    assert _clients_built_per_message(redis_url, broker.Transport, monkeypatch) == 0


def test_stock_kombu_still_builds_clients_per_message(redis_url, monkeypatch):
    """When this fails, Kombu reuses its client itself and config/broker.py can go."""
    assert _clients_built_per_message(redis_url, kombu_redis.Transport, monkeypatch) >= 2
