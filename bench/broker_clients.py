"""CPU per message of Kombu's Redis transport, stock and with config/broker.py's one client
per channel (decision 133): publish, deliver and ack 2,000 messages in one process, three
times each, and count the ``redis.Redis`` clients built per message.

    .venv/bin/python bench/broker_clients.py

Uses Redis db 13 (a queue of its own, deleted at the end).
"""

import sys
import time
from pathlib import Path

import redis
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import broker

URL = "redis://127.0.0.1:6379/13"
NAME = "byok-bench-broker-clients"
MESSAGES = 2000


def measure(
    transport: type, *, url: str = URL, name: str = NAME, messages: int = MESSAGES
) -> tuple[float, float]:
    """Publish, deliver and ack ``messages`` through ``transport``, after a first message
    that sets the channel up; return the CPU ms and the ``redis.Redis`` built, per message."""
    built = []
    init = redis.Redis.__init__
    queue = Queue(name, Exchange(name), routing_key=name)
    received = []
    with Connection(url, transport=transport) as conn:
        producer = conn.Producer()
        consumer = conn.Consumer(queue, callbacks=[lambda _body, msg: received.append(msg.ack())])
        consumer.consume()
        producer.publish({"n": 0}, exchange=queue.exchange, routing_key=name, declare=[queue])
        conn.drain_events(timeout=5)
        redis.Redis.__init__ = lambda self, *a, **kw: (built.append(1), init(self, *a, **kw))[1]
        started = time.process_time()
        try:
            for n in range(messages):
                producer.publish({"n": n}, exchange=queue.exchange, routing_key=name)
            while len(received) < messages + 1:
                conn.drain_events(timeout=5)
        finally:
            redis.Redis.__init__ = init
        cpu = time.process_time() - started
        consumer.cancel()
        queue(conn.default_channel).delete()
    return cpu / messages * 1000, len(built) / messages


def main() -> None:
    for _ in range(3):
        for transport in (kombu_redis.Transport, broker.Transport):
            cpu, built = measure(transport)
            print(
                f"{transport.__module__}.Transport: {cpu:.2f} ms CPU per message, "
                f"{built:g} redis.Redis built per message"
            )


if __name__ == "__main__":
    main()
