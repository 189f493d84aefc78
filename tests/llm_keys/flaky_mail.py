"""An e-mail backend whose first sends go to a real SMTP connection that fails (a server that
accepts and never answers: a timeout; then a closed port: refused), then to Django's locmem
outbox. Set ``FlakyBackend.failures`` to the number of failing sends."""

import socket

from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend


class FlakyBackend(LocmemBackend):
    failures = 0
    attempts = 0
    silent_port = 0
    closed_port = 0

    def send_messages(self, messages):
        cls = type(self)
        cls.attempts += 1
        if cls.attempts <= cls.failures:
            port = cls.silent_port if cls.attempts % 2 else cls.closed_port
            SMTPBackend(host="127.0.0.1", port=port, timeout=0.3).send_messages(messages)
        return super().send_messages(messages)


def silent_listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
