"""A cheap asyncio stand-in of Anthropic's Messages API for the benches (its own process).

``POST /v1/messages`` with ``"stream": true`` answers Anthropic's server-sent events,
``--events`` text deltas spread evenly over ``--seconds``: ``message_start`` (with usage),
``content_block_start``, ``content_block_delta`` x N, ``content_block_stop``,
``message_delta`` (with usage), ``message_stop``. Without ``stream`` it answers the plain
JSON message after ``--latency`` seconds. ``GET /_bench/stats`` counts the TCP connections
it accepted and the requests it answered. ``GET /v1/models`` answers a one-model list,
``POST /v1/messages/count_tokens`` a token count. Every well-formed key is accepted.

The same stream in OpenAI's and Google's shapes, for ``--provider openai|gemini``:

- ``POST /v1/chat/completions`` with ``"stream": true``: ``data:`` lines of
  ``chat.completion.chunk`` objects (a role chunk, ``--events`` content deltas, one with
  ``finish_reason``, then the usage chunk with empty ``choices`` when
  ``stream_options.include_usage`` asks for it), then ``data: [DONE]``
  (https://platform.openai.com/docs/api-reference/chat-streaming).
- ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``: ``data:`` lines of
  ``GenerateContentResponse`` objects, each with ``usageMetadata`` so far, the last with
  ``finishReason: STOP``; events end with CRLF CRLF as Google's do
  (https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent).

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
        if not (
            headers.get("x-api-key")
            or headers.get("authorization")
            or headers.get("x-goog-api-key")
        ):
            self._json(writer, 401, _error("authentication_error", "x-api-key header is required"))
        elif method == "POST" and path == "/v1/messages":
            request = json.loads(body or b"{}")
            if request.get("stream"):
                await self._stream(writer, request)
            else:
                if self.latency:
                    await asyncio.sleep(self.latency)
                self._json(writer, 200, self._message(request))
        elif method == "POST" and path == "/v1/chat/completions":
            request = json.loads(body or b"{}")
            if not request.get("stream"):
                self._json(writer, 400, _error("invalid_request_error", "stream only"))
            else:
                await self._openai_stream(writer, request)
        elif method == "POST" and path.endswith(":streamGenerateContent"):
            model = path.rsplit("/", 1)[-1].split(":", 1)[0]
            await self._gemini_stream(writer, model)
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

    async def _paced(self, writer: asyncio.StreamWriter, event_of) -> bool:
        """Write ``event_of(n)`` for n = 1..events, evenly over the stream's seconds; False if
        the client left."""
        began = time.monotonic()
        step = self.seconds / self.events
        for n in range(1, self.events + 1):
            delay = began + n * step - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if writer.is_closing():
                return False
            writer.write(event_of(n))
            if writer.transport.get_write_buffer_size() > 65536:
                await writer.drain()
        return True

    def _stream_head(self, writer: asyncio.StreamWriter, request_id_header: str) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n"
            + f"{request_id_header}: req_bench_{uuid.uuid4().hex[:16]}\r\n\r\n".encode()
        )

    async def _openai_stream(self, writer: asyncio.StreamWriter, request: dict) -> None:
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": f"chatcmpl-bench{uuid.uuid4().hex[:20]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.get("model", "gpt-5-mini"),
            "system_fingerprint": None,
        }
        if include_usage:
            base["usage"] = None

        def chunk(delta: dict, finish: str | None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return _data({**base, "choices": [choice]}, b"\n\n")

        self._stream_head(writer, "x-request-id")
        writer.write(chunk({"role": "assistant", "content": "", "refusal": None}, None))
        delta = chunk({"content": " word"}, None)
        if not await self._paced(writer, lambda _n: delta):
            return
        tail = [chunk({}, "stop")]
        if include_usage:
            usage = {
                "prompt_tokens": INPUT_TOKENS,
                "completion_tokens": self.events,
                "total_tokens": INPUT_TOKENS + self.events,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            }
            tail.append(_data({**base, "choices": [], "usage": usage}, b"\n\n"))
        tail.append(_chunked(b"data: [DONE]\n\n"))
        writer.write(b"".join(tail) + b"0\r\n\r\n")

    async def _gemini_stream(self, writer: asyncio.StreamWriter, model: str) -> None:
        response_id = uuid.uuid4().hex[:22]
        # Formatted per event, only the running count changing.
        template = (
            '{"candidates":[{"content":{"parts":[{"text":" word"}],"role":"model"},'
            '"index":0%s}],"usageMetadata":{"promptTokenCount":%d,"candidatesTokenCount":%d,'
            '"totalTokenCount":%d},"modelVersion":"%s","responseId":"%s"}'
        )

        def event(n: int, finish: str = "") -> bytes:
            text = template % (finish, INPUT_TOKENS, n, INPUT_TOKENS + n, model, response_id)
            return _chunked(b"data: " + text.encode() + b"\r\n\r\n")

        self._stream_head(writer, "x-request-id")
        if not await self._paced(writer, lambda n: event(n) if n < self.events else b""):
            return
        writer.write(event(self.events, ',"finishReason":"STOP"') + b"0\r\n\r\n")


def _chunked(payload: bytes) -> bytes:
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def _data(data: dict, end: bytes) -> bytes:
    return _chunked(b"data: " + json.dumps(data, separators=(",", ":")).encode() + end)


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
