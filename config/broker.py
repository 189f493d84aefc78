"""Kombu's Redis transport, reusing one Redis client per channel."""

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """Build the channel's synchronous Redis client once, not once per command.

    Kombu 5.7 wraps the channel's connection pool in a new ``redis.Redis`` for every publish,
    every delivered message's bookkeeping and every ack, and redis-py fills a ~170-entry
    case-insensitive callback table for each: four clients and a third of Kombu's CPU per
    message (decisions 034, 133). The client holds no connection of its own (each command
    borrows one from the pool), so one client per pool serves all of them.

    ``_create_client`` is private: Kombu offers no documented hook for this (decision 133).
    tests/config/test_broker.py fails if an upgrade leaves this override dead or needless.
    """

    _sync_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
