"""Short database sections for async views.

An async view does its database work in sections: each runs as ordinary sync Django code in
a thread (``sync_to_async``), and gives its connection back when it ends. With psycopg's
pool (``DATABASES["default"]["OPTIONS"]["pool"]``) that returns the connection to the pool,
so a request waiting on the provider, or relaying a stream, holds none.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import OperationalError, connections

from .errors import DatabaseUnavailableError

P = ParamSpec("P")
R = TypeVar("R")

DATABASE_UNAVAILABLE_MESSAGE = (
    "The service's database cannot be reached right now, so the request was not sent. "
    "Nothing was charged; try again shortly."
)


def _give_back_connections() -> None:
    for connection in connections.all(initialized_only=True):
        # Inside a transaction (a test's, say) the connection is not ours to close.
        if not connection.in_atomic_block:
            connection.close()


def database_section(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Return an async callable that runs ``func`` (sync ORM code) in a thread and then
    gives the thread's database connections back. A database that cannot be reached raises
    DatabaseUnavailableError (503) instead of its own error."""

    @functools.wraps(func)
    def section(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except OperationalError as exc:
            # Connecting failed (refused, no pooled connection in time): a 503, not a 500.
            raise DatabaseUnavailableError(DATABASE_UNAVAILABLE_MESSAGE) from exc
        finally:
            _give_back_connections()

    return sync_to_async(section, thread_sensitive=True)
