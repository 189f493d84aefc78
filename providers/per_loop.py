"""Async SDK clients kept one per event loop, and closed when their loop ends.

An async client's connections belong to the loop that opened them: a web process has one
loop for its life; the test client and ``asyncio.run`` make one per call. A client left open
when its loop ends is reported by aiohttp as "Unclosed client session" / "Unclosed
connector" when it is collected, so each client gets a task that waits for the loop's end:
``asyncio.run`` (and asgiref's ``async_to_sync``, which mimics it) cancels the tasks still
pending before closing the loop, and the cancelled task closes the client then and drops
it, so the finished loop can be collected (a client refers to its loop: kept in a table
keyed weakly by the loop, it would keep the loop, and itself, alive for good).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Protocol, TypeVar


class _AsyncClient(Protocol):
    async def close(self) -> Any: ...


Client = TypeVar("Client", bound=_AsyncClient)

# Each client with the task that closes it (a task the loop itself only holds weakly).
_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[Hashable, tuple[Any, asyncio.Task]]
] = weakref.WeakKeyDictionary()


def per_loop_client(key: Hashable, build: Callable[[], Client]) -> Client:
    """The running loop's client for ``key``, built by ``build`` on first use."""
    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    if key not in clients:
        client = build()
        closer = loop.create_task(_close_when_the_loop_ends(clients, key), name=f"close {key!r}")
        clients[key] = (client, closer)
    return clients[key][0]


async def _close_when_the_loop_ends(clients: dict[Hashable, tuple[Any, asyncio.Task]], key):
    try:
        await asyncio.get_running_loop().create_future()  # never done: waits to be cancelled
    finally:
        client, _closer = clients.pop(key)
        # Gone from the table, the client no longer keeps its (weakly held) loop alive.
        await client.close()
