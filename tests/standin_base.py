"""What the OpenAI and Gemini stand-ins share: a threaded loopback server, the behaviour a
key selects, the record of requests, and the start/stop/inspect handle tests hold.

The behaviours and their markers are the Anthropic stand-in's (``tests/anthropic_standin``),
so a test can say "a revoked key" the same way for every provider: an explicit behaviour set
with ``set_behavior(key, name)`` or ``POST /_standin/behavior``, else a marker in the key
(``-revoked``, ``-forbidden``, ``-ratelimited``, ``-servererror``, ``-overloaded``,
``-timeout``, ``-streamerror``, ``-streamstall``, ``-requesttimeout``, ``-conflict``,
``-connreset``), else the provider's own rule for a well-formed key. Each stand-in answers
a behaviour in its provider's own error shape and status.
"""

from __future__ import annotations

import json
import socket
import struct
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
    # The stream goes silent halfway for ``timeout_sleep`` seconds, then closes unfinished.
    "streamstall",
    "requesttimeout",
    "conflict",
    "connreset",
)
# Behaviours answered with an error before any work; "nokey" and "malformed" are chosen by
# the stand-in itself (no key sent; a key not in the provider's shape).
# Behaviours that break a stream halfway (``fail`` of the stand-ins' stream writers).
STREAM_BREAKS = frozenset(("streamerror", "streamstall"))
ERROR_BEHAVIORS = frozenset(
    (
        "revoked",
        "forbidden",
        "ratelimited",
        "servererror",
        "overloaded",
        "requesttimeout",
        "conflict",
        "nokey",
        "malformed",
    )
)


class ConnectionResetByStandIn(Exception):
    """The stand-in reset the connection instead of answering."""


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    api_key: str | None
    body: Any
    at: float
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StandInState:
    latency: float = 0.0
    stream_word_delay: float = 0.0
    timeout_sleep: float = 30.0
    # Makes a text answer this many words long (a long stream, for metering tests).
    answer_words: int = 0
    behaviors: dict[str, str] = field(default_factory=dict)
    hint_behaviors: dict[str, str] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    connections: int = 0
    # Hashes of the prompts seen, for providers that report cache reads of a repeated prompt.
    prompt_cache: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def behavior_for(self, api_key: str | None, well_formed) -> str:
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
        return "ok" if well_formed(api_key) else "malformed"


def words_of(text: str) -> list[str]:
    return text.split() or ["Hello."]


def lengthened(words: list[str], answer_words: int) -> list[str]:
    """The answer padded to ``answer_words`` words (``state.answer_words``), else as it is."""
    if answer_words <= len(words):
        return words
    return words + [f"word{i}" for i in range(answer_words - len(words))]


def estimate_tokens(value: Any) -> int:
    """About four characters of English per token, at least one."""
    text = value if isinstance(value, str) else json.dumps(value)
    return max(1, len(text) // 4)


class BaseHandler(BaseHTTPRequestHandler):
    """Plumbing: sending JSON and server-sent events, recording, picking the behaviour."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: StandInServer

    def log_message(self, format, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except ConnectionResetByStandIn:
            self.close_connection = True

    # Subclasses say how a key arrives, what a well-formed one looks like and which headers
    # every answer carries.
    def api_key(self) -> str | None:
        raise NotImplementedError

    def well_formed(self, api_key: str) -> bool:
        raise NotImplementedError

    def common_headers(self) -> dict[str, str]:
        return {}

    @property
    def url(self):
        return urlsplit(self.path)

    @property
    def query(self) -> dict[str, str]:
        return {name: values[-1] for name, values in parse_qs(self.url.query).items()}

    def send_json(self, status: int, payload: Any, extra_headers=None) -> None:
        data = json.dumps(payload).encode()
        phrase = BaseHTTPRequestHandler.responses.get(status, ("Status",))[0]
        head = [f"HTTP/1.1 {status} {phrase}"]
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            **self.common_headers(),
            **(extra_headers or {}),
        }
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        self.wfile.flush()

    def start_events(self, extra_headers=None) -> None:
        self.send_response(200)
        headers = {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "Connection": "close",
            **self.common_headers(),
            **(extra_headers or {}),
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True

    def send_event(self, data: str, event: str | None = None, end: str = "\n\n") -> None:
        line = (f"event: {event}\n" if event else "") + f"data: {data}{end}"
        self.wfile.write(line.encode())
        self.wfile.flush()
        delay = self.server.state.stream_word_delay
        if delay:
            time.sleep(delay)

    def stall(self) -> None:
        """The provider goes silent mid-stream: the connection stays open and nothing more
        comes for ``timeout_sleep`` seconds, then it closes without the stream's end."""
        time.sleep(self.server.state.timeout_sleep)

    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def record(self, body: Any) -> tuple[str | None, str]:
        """Record the request; return its key and the behaviour it selects (after any
        latency, timeout or reset that behaviour asks for)."""
        state = self.server.state
        api_key = self.api_key()
        with state.lock:
            state.requests.append(
                RecordedRequest(
                    self.command,
                    self.path,
                    api_key,
                    body,
                    time.monotonic(),
                    {k.lower(): v for k, v in self.headers.items()},
                )
            )
        if state.latency:
            time.sleep(state.latency)
        behavior = state.behavior_for(api_key, self.well_formed)
        if behavior == "timeout":
            time.sleep(state.timeout_sleep)
        if behavior == "connreset":
            # SO_LINGER 0: close() sends a TCP RST, as a dropped proxy connection does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            raise ConnectionResetByStandIn
        return api_key, behavior

    def control(self, body: dict[str, Any]) -> None:
        behavior = body.get("behavior", "ok")
        if behavior not in BEHAVIORS:
            self.send_json(400, {"error": f"behavior must be one of {BEHAVIORS}"})
            return
        state = self.server.state
        with state.lock:
            if body.get("key"):
                state.behaviors[body["key"]] = behavior
            elif body.get("hint"):
                state.hint_behaviors[body["hint"]] = behavior
            else:
                self.send_json(400, {"error": "give 'key' or 'hint'"})
                return
        self.send_json(200, {"ok": True})


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, state: StandInState, handler: type[BaseHandler]):
        self.state = state
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self.state.lock:
            self.state.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        # A client that goes away mid-answer is expected here, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class StandIn:
    """Start and stop a stand-in on a free loopback port; inspect what it received."""

    handler: type[BaseHandler]

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0):
        self.state = StandInState(latency=latency)
        self.server = StandInServer((host, port), self.state, self.handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
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
            self.state.prompt_cache.clear()
            self.state.latency = 0.0
            self.state.stream_word_delay = 0.0
            self.state.answer_words = 0

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def keys_seen(self) -> list[str | None]:
        return [r.api_key for r in self.requests]


def request_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"
