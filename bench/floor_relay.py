"""The least a Python gateway can do per stream: a bare ASGI app that passes ``POST
/v1/messages`` to the stand-in with the platform key and relays its bytes. No framework, no
database, no authentication, no accounting.

``bench/stream_capacity.py --floor`` serves it with uvicorn beside the project, so the reader
sees what is left of the machine's CPU for the gateway's own work at the same load: a
latency this relay cannot reach, no gateway with a framework and a database can.

    FLOOR_UPSTREAM=<stand-in url> FLOOR_API_KEY=<key> uvicorn bench.floor_relay:app
"""

from __future__ import annotations

import os

import aiohttp

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "")
API_KEY = os.environ.get("FLOOR_API_KEY", "")
_session: aiohttp.ClientSession | None = None


def _upstream() -> aiohttp.ClientSession:
    """This worker's session, made on first use: aiohttp needs the running loop for it
    (uvicorn's workers are fresh interpreters, so this state is per process already)."""
    global _session
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2000))
    return _session


async def _body(receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = await _body(receive)
    headers = {
        "content-type": "application/json",
        "x-api-key": API_KEY,
        "anthropic-version": "2023-06-01",
    }
    async with _upstream().post(f"{UPSTREAM}/v1/messages", data=body, headers=headers) as up:
        content_type = up.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": up.status,
                "headers": [(b"content-type", content_type)],
            }
        )
        async for chunk in up.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
