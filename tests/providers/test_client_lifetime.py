"""Async SDK clients live as long as their event loop (providers/per_loop.py): one client per
loop, closed when the loop ends, so the collector finds no open aiohttp session to report
as "Unclosed client session" / "Unclosed connector" (a full test run used to end with them)."""

import asyncio
import gc
import logging
import weakref

import pytest

from providers import anthropic as anthropic_adapter
from providers import get_adapter
from providers import openai as openai_adapter
from providers.base import RelayRequest
from tests.factories import fake_key, fake_openai_key

REQUESTS = {
    "anthropic": RelayRequest(
        "messages",
        {
            "model": "claude-sonnet-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hi"}],
        },
    ),
    "openai": RelayRequest(
        "chat.completions", {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Hi"}]}
    ),
}
SHARED = {"anthropic": anthropic_adapter, "openai": openai_adapter}
KEYS = {"anthropic": fake_key, "openai": fake_openai_key}


async def _two_requests(provider: str):
    """A request and a stream on this loop; the client each used."""
    adapter = get_adapter(provider)
    await adapter.asend(api_key=KEYS[provider](), request=REQUESTS[provider])
    first = SHARED[provider].shared_async_client()
    stream = await adapter.astream(api_key=KEYS[provider](), request=REQUESTS[provider])
    async for _chunk in stream:
        pass
    return first, SHARED[provider].shared_async_client(), weakref.ref(asyncio.get_running_loop())


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_one_client_per_loop_closed_when_the_loop_ends(provider, caplog):
    caplog.set_level(logging.ERROR, logger="asyncio")

    first, again, first_loop = asyncio.run(_two_requests(provider))
    other, _, _ = asyncio.run(_two_requests(provider))

    assert first is again
    assert other is not first
    assert first.is_closed() and other.is_closed()
    del first, again, other
    gc.collect()
    assert first_loop() is None  # nothing keeps the finished loop (and its clients) alive
    assert [r.getMessage() for r in caplog.records if "Unclosed" in r.getMessage()] == []
