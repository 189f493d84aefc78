"""A stand-in for Anthropic's API on loopback, for tests, benchmarks and offline demos.

It speaks the shapes the official SDK expects: ``GET /v1/models``, ``POST /v1/messages``
(plain and streamed as server-sent events) and Anthropic's error envelopes. What it answers
depends on the key a request carries:

- an explicit behaviour set with ``set_behavior(key, name)`` (or ``POST /_standin/behavior``
  with ``{"key": ...}`` or ``{"hint": "<last 4 characters>"}``, for a demo);
- otherwise a marker in the key: ``...-revoked`` → 401, ``-forbidden`` → 403,
  ``-ratelimited`` → 429, ``-servererror`` → 500, ``-overloaded`` → 529,
  ``-timeout`` → no answer in time, ``-streamerror`` → a stream that fails midway;
- otherwise a well-formed ``sk-ant-`` key is accepted; a request with no key gets 401.

Run it by hand: ``python -m tests.anthropic_standin --port 8765``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BEHAVIORS = (
    "ok",
    "revoked",
    "forbidden",
    "ratelimited",
    "servererror",
    "overloaded",
    "timeout",
    "streamerror",
    "requesttimeout",
    "conflict",
)

ERRORS = {
    "revoked": (401, "authentication_error", "invalid x-api-key"),
    "forbidden": (403, "permission_error", "Your API key does not have permission to use the API."),
    "ratelimited": (429, "rate_limit_error", "Number of requests has exceeded your rate limit."),
    "servererror": (500, "api_error", "Internal server error"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "requesttimeout": (408, "timeout_error", "Request timed out"),
    "conflict": (409, "conflict_error", "Conflict"),
    "nokey": (401, "authentication_error", "x-api-key header is required"),
}

MODELS = [
    {"id": "claude-sonnet-5", "display_name": "Claude Sonnet 5"},
    {"id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5"},
    {"id": "claude-opus-5", "display_name": "Claude Opus 5"},
]


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    api_key: str | None
    body: dict[str, Any] | None
    at: float


@dataclass
class StandInState:
    latency: float = 0.0
    # Seconds between the words of a streamed answer, so a test can watch it grow.
    stream_word_delay: float = 0.0
    timeout_sleep: float = 30.0
    behaviors: dict[str, str] = field(default_factory=dict)
    hint_behaviors: dict[str, str] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def behavior_for(self, api_key: str | None) -> str:
        if not api_key:
            return "nokey"
        with self.lock:
            if api_key in self.behaviors:
                return self.behaviors[api_key]
            if api_key[-4:] in self.hint_behaviors:
                return self.hint_behaviors[api_key[-4:]]
        for name in BEHAVIORS[1:]:
            if f"-{name}" in api_key:
                return name
        return "ok" if api_key.startswith("sk-ant-") else "revoked"


def _extract_key(headers) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def _estimate_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


def _reply_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content", "")
    if isinstance(content, list):
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return f"Stand-in reply to: {str(content)[:60]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: StandInServer

    def log_message(self, format, *args):
        pass

    # --- plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, payload: dict[str, Any], extra_headers=None) -> None:
        data = json.dumps(payload).encode()
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0] or 'Status'}"]
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            "request-id": f"req_standin_{uuid.uuid4().hex[:16]}",
        }
        headers.update(extra_headers or {})
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        self.wfile.flush()

    def _error(self, kind: str) -> None:
        status, error_type, message = ERRORS[kind]
        extra = {"retry-after": "0"} if status in (429, 529) else None
        # x-should-retry=false keeps the SDK's own retries out of tests that count requests.
        self._send(
            status,
            {"type": "error", "error": {"type": error_type, "message": message}},
            {**(extra or {}), "x-should-retry": "false"},
        )

    def _read_body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _record(self, body) -> tuple[str | None, str]:
        state = self.server.state
        api_key = _extract_key(self.headers)
        with state.lock:
            state.requests.append(
                RecordedRequest(self.command, self.path, api_key, body, time.monotonic())
            )
        if state.latency:
            time.sleep(state.latency)
        behavior = state.behavior_for(api_key)
        if behavior == "timeout":
            time.sleep(state.timeout_sleep)
        return api_key, behavior

    # --- routes -----------------------------------------------------------------------------
    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != "/v1/models":
            self._send(
                404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}
            )
            return
        _, behavior = self._record(None)
        if behavior in ERRORS:
            self._error(behavior)
            return
        limit = int(parse_qs(url.query).get("limit", ["20"])[0])
        data = [
            {"type": "model", "created_at": "2025-09-29T00:00:00Z", **m} for m in MODELS[:limit]
        ]
        self._send(
            200,
            {
                "data": data,
                "has_more": limit < len(MODELS),
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )

    def do_POST(self):
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path == "/_standin/behavior":
            self._control(body or {})
            return
        if url.path != "/v1/messages":
            self._send(
                404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}
            )
            return
        _, behavior = self._record(body)
        if behavior in ERRORS:
            self._error(behavior)
            return
        if not isinstance(body, dict) or "model" not in body or "messages" not in body:
            self._send(
                400,
                {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "bad body"},
                },
            )
            return
        if body.get("stream"):
            self._stream(body, fail=behavior == "streamerror")
        else:
            self._message(body)

    def _control(self, body: dict[str, Any]) -> None:
        behavior = body.get("behavior", "ok")
        if behavior not in BEHAVIORS:
            self._send(400, {"error": f"behavior must be one of {BEHAVIORS}"})
            return
        state = self.server.state
        with state.lock:
            if body.get("key"):
                state.behaviors[body["key"]] = behavior
            elif body.get("hint"):
                state.hint_behaviors[body["hint"]] = behavior
            else:
                self._send(400, {"error": "give 'key' or 'hint'"})
                return
        self._send(200, {"ok": True})

    def _usage(self, body: dict[str, Any], text: str) -> dict[str, int]:
        output = min(int(body.get("max_tokens") or 1), max(1, len(text.split())))
        return {
            "input_tokens": _estimate_tokens(body.get("messages"))
            + _estimate_tokens(body.get("system") or ""),
            "output_tokens": output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def _message(self, body: dict[str, Any]) -> None:
        text = _reply_text(body)
        self._send(
            200,
            {
                "id": f"msg_standin_{uuid.uuid4().hex[:20]}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": self._usage(body, text),
            },
        )

    def _chunk(self, event: str, data: dict[str, Any]) -> None:
        payload = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def _stream(self, body: dict[str, Any], *, fail: bool) -> None:
        text = _reply_text(body)
        usage = self._usage(body, text)
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            f"Transfer-Encoding: chunked\r\nrequest-id: req_standin_{uuid.uuid4().hex[:16]}\r\n\r\n"
        )
        self.wfile.write(head.encode())
        message = {
            "id": f"msg_standin_{uuid.uuid4().hex[:20]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        self._chunk("message_start", {"type": "message_start", "message": message})
        self._chunk(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        self._chunk("ping", {"type": "ping"})
        words = text.split(" ")
        for position, word in enumerate(words):
            if fail and position == 2:
                self._chunk(
                    "error",
                    {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                    },
                )
                break
            piece = word if position == 0 else " " + word
            if position and self.server.state.stream_word_delay:
                time.sleep(self.server.state.stream_word_delay)
            self._chunk(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
        else:
            self._chunk("content_block_stop", {"type": "content_block_stop", "index": 0})
            self._chunk(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            )
            self._chunk("message_stop", {"type": "message_stop"})
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, state: StandInState):
        self.state = state
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        with self.state.lock:
            self.state.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        # A client that goes away (a disconnect test, a closed keep-alive connection) is
        # expected here, not an error worth a traceback in the test output.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class StandIn:
    """Start and stop a stand-in on a free loopback port; inspect what it received."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0):
        self.state = StandInState(latency=latency)
        self.server = StandInServer((host, port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandIn:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def set_behavior(self, api_key: str, behavior: str) -> None:
        assert behavior in BEHAVIORS, behavior
        with self.state.lock:
            self.state.behaviors[api_key] = behavior

    def reset(self) -> None:
        with self.state.lock:
            self.state.behaviors.clear()
            self.state.hint_behaviors.clear()
            self.state.requests.clear()
            self.state.connections = 0
            self.state.latency = 0.0
            self.state.stream_word_delay = 0.0

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def keys_seen(self) -> list[str | None]:
        return [r.api_key for r in self.requests]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds to wait per request.")
    args = parser.parse_args()
    standin = StandIn(args.host, args.port, args.latency)
    print(f"Anthropic stand-in listening on {standin.url} (set ANTHROPIC_BASE_URL={standin.url})")
    try:
        standin.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin.server.server_close()


if __name__ == "__main__":
    main()
