"""Helpers for the gateway tests: request bodies, the API call, the ledger as tuples."""

import json

from asgiref.sync import async_to_sync
from django.test import AsyncClient

from credits.models import CreditEntry

MODEL = "claude-sonnet-5"
API = "/api/v1/w/acme/messages"


def body(**overrides) -> dict:
    data = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Say hello"}],
    }
    data.update(overrides)
    return data


def post(client, data, *, path: str = API, **extra):
    raw = data if isinstance(data, str | bytes) else json.dumps(data)
    return client.post(path, raw, content_type="application/json", **extra)


def ledger(workspace) -> list[tuple[str, int]]:
    return [
        (entry.kind, entry.amount)
        for entry in CreditEntry.objects.filter(workspace=workspace).order_by("id")
    ]


def streamed(response) -> bytes:
    """The body of a response from ``post_streamed`` (or any response, read whole)."""
    if hasattr(response, "streamed_body"):
        return response.streamed_body
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def post_streamed(client, data, *, path: str = API, **headers):
    """POST as ``post`` does, but through Django's async test client, reading the streamed
    body in the same event loop as the view, as the ASGI server does. The session cookie
    and headers of the sync ``client`` are reused."""
    raw = data if isinstance(data, str | bytes) else json.dumps(data)

    async def run():
        async_client = AsyncClient(**getattr(client, "defaults", {}))
        async_client.cookies = client.cookies
        response = await async_client.post(
            path, raw, content_type="application/json", headers=headers
        )
        if response.streaming:
            response.streamed_body = b"".join([chunk async for chunk in response.streaming_content])
        return response

    return async_to_sync(run)()
