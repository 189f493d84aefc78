"""An idle connection to ``make serve`` stays open for its next request well past gunicorn's
own 2 s keep-alive (config/gunicorn.py): a client or proxy that reuses it after a pause gets
an answer, not a connection the server is closing under it."""

import http.client
import time
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.served


def test_an_idle_connection_is_kept_for_the_next_request(served):
    url = urlsplit(served.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        first.read()
        socket_used = connection.sock

        time.sleep(3)  # longer than gunicorn's default keep-alive
        # On a connection the server has closed this raises RemoteDisconnected.
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        second.read()
        socket_reused = connection.sock is socket_used
    finally:
        connection.close()

    assert (first.status, second.status) == (200, 200)
    # Not a new connection opened for the second request after the server closed the first.
    assert socket_used is not None
    assert socket_reused
