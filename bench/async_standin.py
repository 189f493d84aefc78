"""A cheap asyncio stand-in of Anthropic's Messages API for the benches (its own process).

``POST /v1/messages`` with ``"stream": true`` answers Anthropic's server-sent events,
``--events`` text deltas spread evenly over ``--seconds``: ``message_start`` (with usage),
``content_block_start``, ``content_block_delta`` x N, ``content_block_stop``,
``message_delta`` (with usage), ``message_stop``. Without ``stream`` it answers the plain
JSON message after ``--latency`` seconds. ``GET /_bench/stats`` counts the TCP connections
it accepted and the requests it answered. ``GET /v1/models`` answers a one-model list,
``POST /v1/messages/count_tokens`` a token count. Every well-formed key is accepted.

It is written on asyncio's streams API with no HTTP library, so a thousand open streams cost
it little CPU on a machine it shares with the client and the server being measured:

    python bench/async_standin.py --port 0 --events 100 --seconds 10

prints ``listening http://127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
INPUT_TOKENS = 12


def _event(name: str, data: dict) -> bytes:
    payload = f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


class Standin:
    """One stand-in: the stream's shape and timing, and the JSON answers."""

    def __init__(self, *, events: int, seconds: float, latency: float) -> None:
        self.connections = 0
        self.requests = 0
        self.events = events
        self.seconds = seconds
        self.latency = latency
        self.delta = _event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": " word"},
            },
        )
        self.tail = b"".join(
            (
                _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
                _event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": events},
                    },
                ),
                _event("message_stop", {"type": "message_stop"}),
                b"0\r\n\r\n",
            )
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        if path == "/_bench/stats":
            stats = {"connections": self.connections, "requests": self.requests}
            self._json(writer, 200, stats)
            await writer.drain()
            return True
        self.requests += 1
        if not (headers.get("x-api-key") or headers.get("authorization")):
            self._json(writer, 401, _error("authentication_error", "x-api-key header is required"))
        elif method == "POST" and path == "/v1/messages":
            request = json.loads(body or b"{}")
            if request.get("stream"):
                await self._stream(writer, request)
            else:
                if self.latency:
                    await asyncio.sleep(self.latency)
                self._json(writer, 200, self._message(request))
        elif method == "POST" and path == "/v1/messages/count_tokens":
            self._json(writer, 200, {"input_tokens": INPUT_TOKENS})
        elif method == "GET" and path == "/v1/models":
            model = {"type": "model", "id": "claude-haiku-4-5", "display_name": "Claude Haiku"}
            self._json(
                writer,
                200,
                {"data": [model], "has_more": False, "first_id": model["id"], "last_id": None},
            )
        else:
            self._json(writer, 404, _error("not_found_error", f"no route {method} {path}"))
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    def _message(self, request: dict) -> dict:
        return {
            "id": f"msg_bench_{uuid.uuid4().hex[:20]}",
            "type": "message",
            "role": "assistant",
            "model": request.get("model", "claude-haiku-4-5"),
            "content": [{"type": "text", "text": "A short answer from the stand-in."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": INPUT_TOKENS,
                "output_tokens": 7,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    def _json(self, writer: asyncio.StreamWriter, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"request-id: req_bench_{uuid.uuid4().hex[:16]}\r\n\r\n".encode()
            + body
        )

    async def _stream(self, writer: asyncio.StreamWriter, request: dict) -> None:
        start = {
            "type": "message_start",
            "message": {
                **self._message(request),
                "content": [],
                "stop_reason": None,
                "usage": {
                    "input_tokens": INPUT_TOKENS,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
        }
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n"
            + f"request-id: req_bench_{uuid.uuid4().hex[:16]}\r\n\r\n".encode()
            + _event("message_start", start)
            + _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        # Deltas at fixed times from the start, so a late wake-up does not stretch the stream.
        began = time.monotonic()
        step = self.seconds / self.events
        for n in range(1, self.events + 1):
            delay = began + n * step - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if writer.is_closing():
                return
            writer.write(self.delta)
            if writer.transport.get_write_buffer_size() > 65536:
                await writer.drain()
        writer.write(self.tail)


def _error(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}}


async def _serve(args: argparse.Namespace) -> None:
    standin = Standin(events=args.events, seconds=args.seconds, latency=args.latency)
    server = await asyncio.start_server(standin.handle, "127.0.0.1", args.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"listening http://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--events", type=int, default=100, help="text deltas per stream")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one stream")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before a plain JSON answer"
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
