"""A stand-in for Anthropic's API on loopback, for tests, benchmarks and offline demos.

It speaks the shapes the official SDK expects: ``GET /v1/models``, ``POST /v1/messages``
(plain and streamed as server-sent events, in the real API's event order),
``POST /v1/messages/count_tokens`` and Anthropic's error envelopes, with the ``request-id``
and ``anthropic-ratelimit-*`` response headers. The whole Messages API is understood:

- ``tools`` + ``tool_choice``: the answer is a ``tool_use`` block for the first tool (or the
  one ``tool_choice`` names; none with ``{"type": "none"}``), ``stop_reason: "tool_use"``;
  a following turn whose last user message holds a ``tool_result`` gets a text answer;
- ``thinking`` (``enabled`` or ``adaptive``): a signed ``thinking`` block comes first
  (streamed as ``thinking_delta`` then ``signature_delta``);
- image and document blocks count into input tokens by Anthropic's published rules
  (image: ceil(w/28) x ceil(h/28) after resizing to 1568 px / 1.15 MP, the size read from
  the PNG, GIF, JPEG or WebP header, else 1,600; PDF: pages x ``TOKENS_PER_PDF_PAGE``);
- ``cache_control`` (on tools, system blocks, content blocks, or top level): the prefix up to
  the last breakpoint is written (``cache_creation_input_tokens`` and
  ``cache_creation.ephemeral_5m/1h_input_tokens`` by each breakpoint's TTL) and read on a
  repeat of the same prefix (``cache_read_input_tokens``); there is no minimum length;
- ``stop_sequences`` end the answer where one occurs (``stop_reason: "stop_sequence"``);
  ``temperature``/``top_p`` (0-1), ``top_k`` (≥ 0), ``metadata.user_id`` (≤ 256 characters)
  and ``service_tier`` (``auto``/``standard_only``) are checked like the API does (400);
- ``set_usage_override({...})`` replaces fields of the usage every answer reports, so a
  test can make the real usage exceed what the gateway held.

Every request's full JSON body and its ``anthropic-version`` / ``anthropic-beta`` headers are
recorded (``requests``). What it answers depends on the key a request carries:

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
import base64
import hashlib
import json
import math
import re
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
    "requesttimeout",
    "conflict",
    "connreset",
)


class _ConnectionReset(Exception):
    """The stand-in reset the connection instead of answering."""


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


# Anthropic's image rules (platform.claude.com/docs/en/build-with-claude/vision): an image
# larger than 1568 px on its long edge or ~1.15 megapixels is scaled down; it then costs one
# token per 28 x 28 pixel patch.
IMAGE_MAX_EDGE = 1568
IMAGE_MAX_PIXELS = 1_150_000
IMAGE_PATCH = 28
IMAGE_TOKENS_CAP = math.ceil(1092 / IMAGE_PATCH) ** 2  # 1,521: a square image at the limit
# A PDF page is sent as its text and an image of the page (build-with-claude/pdf-support:
# "typically 1,500-3,000 tokens per page").
TOKENS_PER_PDF_PAGE = 2_500
# Tool use adds a system prompt of its own (build-with-claude/tool-use: 346 tokens with
# tool_choice auto/none, 313 with any/tool on current models).
TOOL_SYSTEM_PROMPT_TOKENS = {"auto": 346, "none": 346, "any": 313, "tool": 313}
RATE_LIMIT_REQUESTS = 4_000
RATE_LIMIT_TOKENS = 2_000_000


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    api_key: str | None
    body: dict[str, Any] | None
    at: float
    anthropic_version: str | None = None
    anthropic_beta: str | None = None
    # Every header of the request, names lowercased (the API key's included).
    headers: dict[str, str] = field(default_factory=dict)


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
    usage_override: dict[str, Any] = field(default_factory=dict)
    # Hashes of the prompt prefixes written to the "cache" (model + the prefix's content).
    cached_prefixes: set[str] = field(default_factory=set)
    # Metering shapes (see metered_answer): thinking tokens billed when the request asks for
    # thinking with display "omitted" (0: its budget), and a long answer of this many words.
    hidden_thinking_tokens: int = 0
    answer_words: int = 0
    hidden_thinking_billed: list[int] = field(default_factory=list)
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


def _json_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


# Kept for callers that estimate like the stand-in does for plain text.
_estimate_tokens = _json_tokens


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return (width, height) from a PNG, GIF, JPEG or WebP header, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return (
                1 + int.from_bytes(data[24:27], "little"),
                1 + int.from_bytes(data[27:30], "little"),
            )
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 <= len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            if marker in (0xD8, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:
                i += 2 if marker != 0xFF else 1
                continue
            i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


def image_tokens(block: dict[str, Any]) -> int:
    """What Anthropic bills for one image block: patches of the (resized) image."""
    source = block.get("source") or {}
    size = None
    if source.get("type") == "base64":
        try:
            size = image_size(base64.b64decode(source.get("data") or "", validate=False))
        except ValueError:
            size = None
    if not size or not all(size):
        return 1_600  # "about 1,600 tokens" at the resize limit
    width, height = size
    scale = min(
        1.0, IMAGE_MAX_EDGE / max(width, height), math.sqrt(IMAGE_MAX_PIXELS / (width * height))
    )
    width, height = max(1, int(width * scale)), max(1, int(height * scale))
    return math.ceil(width / IMAGE_PATCH) * math.ceil(height / IMAGE_PATCH)


def document_tokens(block: dict[str, Any]) -> int:
    source = block.get("source") or {}
    extra = _json_tokens([block.get("title") or "", block.get("context") or ""])
    kind = source.get("type")
    if kind == "text":
        return extra + _json_tokens(source.get("data") or "")
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return extra + _json_tokens(content)
        return extra + sum(_block_tokens(item) for item in content or [])
    if kind == "base64":
        try:
            data = base64.b64decode(source.get("data") or "", validate=False)
        except ValueError:
            data = b""
        pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
        return extra + max(1, pages) * TOKENS_PER_PDF_PAGE
    return extra + TOKENS_PER_PDF_PAGE  # a URL or file the stand-in cannot read: one page


def _block_tokens(block: Any) -> int:
    if not isinstance(block, dict):
        return _json_tokens(block)
    kind = block.get("type")
    if kind == "image":
        return image_tokens(block)
    if kind == "document":
        return document_tokens(block)
    if kind == "tool_result" and isinstance(block.get("content"), list):
        rest = {k: v for k, v in block.items() if k not in ("content", "cache_control")}
        return _json_tokens(rest) + sum(_block_tokens(item) for item in block["content"])
    return _json_tokens({k: v for k, v in block.items() if k != "cache_control"})


@dataclass(slots=True)
class Segment:
    """One piece of the prompt, in the order the API caches it: tools, system, messages."""

    tokens: int
    ttl: str | None  # the cache_control TTL of a breakpoint on this piece, else None
    content: Any


def _ttl(block: Any) -> str | None:
    if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
        return block["cache_control"].get("ttl") or "5m"
    return None


def prompt_segments(body: dict[str, Any]) -> list[Segment]:
    segments: list[Segment] = []
    tools = body.get("tools") or []
    if tools:
        choice = (body.get("tool_choice") or {}).get("type", "auto")
        segments.append(Segment(TOOL_SYSTEM_PROMPT_TOKENS.get(choice, 346), None, "tools"))
        for tool in tools:
            segments.append(Segment(_block_tokens(tool), _ttl(tool), tool))
    system = body.get("system")
    if isinstance(system, list):
        segments += [Segment(_block_tokens(b), _ttl(b), b) for b in system]
    elif system:
        segments.append(Segment(_json_tokens(system), None, system))
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else message
        if isinstance(content, list):
            segments.append(Segment(3, None, message.get("role")))
            segments += [Segment(_block_tokens(b), _ttl(b), b) for b in content]
        else:
            segments.append(Segment(_json_tokens(content) + 3, None, content))
    if isinstance(body.get("cache_control"), dict) and segments:
        # Automatic caching: the breakpoint is the last block of the prompt.
        segments[-1].ttl = body["cache_control"].get("ttl") or "5m"
    return segments


def input_token_count(body: dict[str, Any]) -> int:
    """What ``count_tokens`` answers: every input token of the request."""
    return max(1, sum(s.tokens for s in prompt_segments(body)))


def _prefix_key(model: str, segments: list[Segment]) -> str:
    raw = json.dumps([model, [s.content for s in segments]], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _sample_value(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "stand-in"
    kind = schema.get("type")
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: _sample_value(properties.get(name)) for name in schema.get("required") or []}
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "null": None}.get(
        kind, "stand-in"
    )


def _last_user_content(body: dict[str, Any]) -> Any:
    # The last message of the user's: Claude Code may send a "system" message after it.
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user"]
    last = (users or messages or [{}])[-1]
    return last.get("content", "")


def _tool_result_in(content: Any) -> dict[str, Any] | None:
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "tool_result":
                return part
    return None


def _reply_text(body: dict[str, Any]) -> str:
    content = _last_user_content(body)
    result = _tool_result_in(content)
    if result is not None:
        value = result.get("content", "")
        if isinstance(value, list):
            value = " ".join(p.get("text", "") for p in value if isinstance(p, dict))
        return f"Stand-in reply to tool result: {str(value)[:60]}"
    if isinstance(content, list):
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return f"Stand-in reply to: {str(content)[:60]}"


def _tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool the answer calls, or None for a text answer, as `tool_choice` says
    (platform.claude.com/cookbook/tool-use-tool-choice): `tool` forces the named tool, `any`
    must use one of them, `none` uses none, and `auto` (the default) lets the model decide
    — the stand-in calls a tool only when the user's last message names it (a word of its
    name such as "weather" for get_weather, or the whole name). Nothing is called after a
    `tool_result`: that turn is answered in text."""
    tools = client_tools(body)
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = choice.get("type", "auto")
    if not tools or kind == "none" or _tool_result_in(_last_user_content(body)) is not None:
        return None
    if kind == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), tools[0])
    mentioned = _mentioned_tool(tools, _last_user_text(body))
    if kind == "any":
        return mentioned or tools[0]
    return mentioned


def _last_user_text(body: dict[str, Any]) -> str:
    content = _last_user_content(body)
    if isinstance(content, list):
        # Claude Code adds its context as <system-reminder> text blocks; the user's words
        # are the other blocks.
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict)
            and isinstance(part.get("text"), str)
            and not part["text"].lstrip().startswith("<system-reminder>")
        )
    return content if isinstance(content, str) else ""


def _mentioned_tool(tools: list[dict[str, Any]], text: str) -> dict[str, Any] | None:
    said = set(re.findall(r"[a-z0-9]+", text.lower()))
    for tool in tools:
        name = str(tool.get("name") or "").lower()
        words = {word for word in re.split(r"[^a-z0-9]+", name) if len(word) >= 4}
        if name in said or words & said:
            return tool
    return None


def _words(text: str) -> int:
    return max(1, len(text.split()))


# --- Server tools, fast mode and inference geography, billed as Anthropic documents ---------
# Web search (platform.claude.com/docs/en/agents-and-tools/tool-use/web-search-tool): each
# search is a `server_tool_use` block (name "web_search") followed by a
# `web_search_tool_result` block; `usage.server_tool_use.web_search_requests` counts the
# searches, billed at $10 per 1,000, and the results are billed as input tokens
# (about-claude/pricing, "Web search tool"). Web fetch (.../web-fetch-tool): the same shapes
# with "web_fetch" and `web_fetch_requests`, no fee beyond the fetched content's input
# tokens. Code execution (.../code-execution-tool): `server_tool_use` (name
# "bash_code_execution") and a `bash_code_execution_tool_result`; billed by container time,
# which the usage does not report.
WEB_SEARCHES_PER_REQUEST = 1
WEB_SEARCH_RESULT_TOKENS = 2_500  # per search: a few results' encrypted page content
WEB_FETCH_RESULT_TOKENS = 3_000  # per fetch: one page
SERVER_TOOLS = {
    "web_search_": ("web_search", "web_search_tool_result"),
    "web_fetch_": ("web_fetch", "web_fetch_tool_result"),
    "code_execution_": ("bash_code_execution", "bash_code_execution_tool_result"),
}


def _server_tool(tool: Any) -> tuple[str, str] | None:
    kind = tool.get("type") if isinstance(tool, dict) else None
    return next((v for k, v in SERVER_TOOLS.items() if str(kind or "").startswith(k)), None)


def client_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tools the client runs (answered with ``tool_use``), not Anthropic's server tools."""
    return [t for t in body.get("tools") or [] if isinstance(t, dict) and _server_tool(t) is None]


def _server_tool_uses(body: dict[str, Any]) -> list[tuple[str, str]]:
    uses = []
    if _tool_result_in(_last_user_content(body)) is not None:
        return uses  # a turn answering a client tool: no new search
    for tool in body.get("tools") or []:
        names = _server_tool(tool)
        if names is None:
            continue
        times = WEB_SEARCHES_PER_REQUEST if names[0] == "web_search" else 1
        if isinstance(tool.get("max_uses"), int):
            times = min(times, tool["max_uses"])
        uses += [names] * times
    return uses


def server_tool_blocks(body: dict[str, Any], seed: str) -> list[dict[str, Any]]:
    """The server tool calls of the answer and their results, in the API's block shapes."""
    query = _reply_text(body)[19:79] or "stand-in"
    blocks: list[dict[str, Any]] = []
    for number, (name, result_type) in enumerate(_server_tool_uses(body)):
        use_id = f"srvtoolu_{seed[:20]}{number:04d}"
        if name == "web_search":
            tool_input: dict[str, Any] = {"query": query}
            content: Any = [
                {
                    "type": "web_search_result",
                    "url": f"https://example.com/standin/{number}",
                    "title": f"Stand-in result {number}",
                    "encrypted_content": base64.b64encode(seed.encode()).decode(),
                    "page_age": None,
                }
            ]
        elif name == "web_fetch":
            tool_input = {"url": "https://example.com/standin"}
            content = {
                "type": "web_fetch_result",
                "url": "https://example.com/standin",
                "content": {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": query},
                },
            }
        else:
            tool_input = {"command": "echo stand-in"}
            content = {
                "type": "bash_code_execution_result",
                "stdout": "stand-in\n",
                "stderr": "",
                "return_code": 0,
                "content": [],
            }
        blocks.append({"type": "server_tool_use", "id": use_id, "name": name, "input": tool_input})
        blocks.append({"type": result_type, "tool_use_id": use_id, "content": content})
    return blocks


def bill_server_tools_and_modes(body: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """Add what server tools bill to a usage (their uses, their results as input tokens), and
    echo the request's `speed` and `inference_geo` as the usage reports them
    (build-with-claude/fast-mode: `usage.speed`; build-with-claude/data-residency:
    `usage.inference_geo`)."""
    usage = dict(usage)
    uses = [name for name, _ in _server_tool_uses(body)]
    searches, fetches = uses.count("web_search"), uses.count("web_fetch")
    if any(_server_tool(t) for t in body.get("tools") or []):
        usage["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": fetches}
        usage["input_tokens"] += (
            searches * WEB_SEARCH_RESULT_TOKENS + fetches * WEB_FETCH_RESULT_TOKENS
        )
    for name in ("speed", "inference_geo"):
        if isinstance(body.get(name), str):
            usage[name] = body[name]
    return usage


def server_tool_delta_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """The usage fields a `message_delta` carries besides the token counts."""
    return {name: usage[name] for name in ("server_tool_use",) if name in usage}


def plan_answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str | None, int]:
    """Return the answer's content blocks, stop reason, stop sequence and output tokens.

    Deterministic for a given body (ids come from its hash), so a streamed and a plain call
    of the same request produce the same message apart from the message id.
    """
    seed = hashlib.sha256(
        json.dumps({k: v for k, v in body.items() if k != "stream"}, sort_keys=True).encode()
    ).hexdigest()
    blocks: list[dict[str, Any]] = []
    output = 0
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        thought = f"The user asks: {_reply_text(body)[19:79]}. A short answer will do."
        signature = base64.b64encode(hashlib.sha256(("sig" + seed).encode()).digest() * 2)
        blocks.append({"type": "thinking", "thinking": thought, "signature": signature.decode()})
        output += _words(thought)
    server_blocks = server_tool_blocks(body, seed)
    blocks += server_blocks
    output += sum(_json_tokens(b["input"]) for b in server_blocks if "input" in b)
    choice = body.get("tool_choice") or {"type": "auto"}
    tool = _tool_to_call(body)
    if tool is not None:
        if choice.get("type", "auto") == "auto":
            preface = f"I'll use the {tool.get('name')} tool."
            blocks.append({"type": "text", "text": preface})
            output += _words(preface)
        tool_input = _sample_value(tool.get("input_schema") or {"type": "object"})
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_{seed[:24]}",
                "name": tool.get("name"),
                "input": tool_input,
            }
        )
        output += _json_tokens(tool_input) + 8
        return blocks, "tool_use", None, min(int(body.get("max_tokens") or 1), output)
    text = _reply_text(body)
    stop_reason, stop_sequence = "end_turn", None
    for sequence in body.get("stop_sequences") or []:
        if sequence and sequence in text:
            text, stop_reason, stop_sequence = (
                text[: text.index(sequence)],
                "stop_sequence",
                sequence,
            )
            break
    room = max(1, int(body.get("max_tokens") or 1) - output)
    if _words(text) > room:
        # The answer is cut where max_tokens runs out, as the API does.
        text, stop_reason, stop_sequence = " ".join(text.split(" ")[:room]), "max_tokens", None
    blocks.append({"type": "text", "text": text})
    output += _words(text)
    return blocks, stop_reason, stop_sequence, min(int(body.get("max_tokens") or 1), output)


def metered_answer(
    body: dict[str, Any], blocks: list[dict[str, Any]], output: int, state: StandInState
) -> tuple[list[dict[str, Any]], int]:
    """Shape an answer the way the API bills work the client does not see.

    Thinking with ``display: "omitted"`` comes back as a thinking block whose ``thinking`` is
    empty (only its signature is streamed), yet every thinking token is billed as output:
    "You're charged for the full thinking tokens generated by the original request, not the
    summary tokens. The billed output token count will not match the count of tokens you
    see in the response" (docs.claude.com/en/docs/build-with-claude/extended-thinking,
    "Summarized thinking" and "Controlling thinking display"). The stand-in bills
    ``state.hidden_thinking_tokens`` (or the request's ``budget_tokens``) for it, recorded
    in ``state.hidden_thinking_billed``.

    ``state.answer_words`` makes the text answer that long (a long stream, for metering as
    it streams); the usage counts its words, capped by ``max_tokens`` as the API does.
    """
    thinking = body.get("thinking")
    limit = int(body.get("max_tokens") or 1)
    if isinstance(thinking, dict) and thinking.get("display") == "omitted":
        hidden = state.hidden_thinking_tokens or int(thinking.get("budget_tokens") or 1024)
        for block in blocks:
            if block["type"] == "thinking":
                output -= _words(block["thinking"])
                block["thinking"] = ""
                output += hidden
        with state.lock:
            state.hidden_thinking_billed.append(hidden)
    if state.answer_words:
        room = max(1, limit - output)
        words = min(state.answer_words, room)
        for block in blocks:
            if block["type"] == "text":
                output -= _words(block["text"])
                block["text"] = " ".join(f"word{i % 10}" for i in range(words))
                output += words
                break
    return blocks, output


def _invalid(body: dict[str, Any]) -> str | None:
    """The API's own 400 for a malformed request, or None."""
    if not isinstance(body, dict) or "model" not in body or "messages" not in body:
        return "bad body"
    problem = _mistyped(body)
    if problem:
        return problem
    for name, low, high in (("temperature", 0, 1), ("top_p", 0, 1), ("top_k", 0, None)):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name}: Input should be a valid number"
        if value < low or (high is not None and value > high):
            return f"{name}: range: {low} <= {name}" + (f" <= {high}" if high is not None else "")
    metadata = body.get("metadata")
    if metadata is not None:
        user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
        if not isinstance(metadata, dict) or (user_id is not None and len(str(user_id)) > 256):
            return "metadata.user_id: String should have at most 256 characters"
    if body.get("service_tier") not in (None, "auto", "standard_only"):
        return "service_tier: Input should be 'auto' or 'standard_only'"
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        # count_tokens takes no max_tokens; messages needs it above the budget.
        if "max_tokens" in body and budget >= int(body.get("max_tokens") or 0):
            return "`max_tokens` must be greater than `thinking.budget_tokens`."
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        names = {t.get("name") for t in body.get("tools") or []}
        if choice.get("name") not in names:
            return f"Tool '{choice.get('name')}' not found in provided tools"
    return None


# The Messages fields that must be lists or objects: the API refuses any other type with a
# 400 invalid_request_error naming the field (docs.claude.com/en/api/errors: "400 -
# invalid_request_error: There was an issue with the format or content of your request").
LIST_FIELDS = ("messages", "tools", "stop_sequences")
OBJECT_FIELDS = ("tool_choice", "thinking", "metadata")


def _mistyped(body: dict[str, Any]) -> str | None:
    for name in LIST_FIELDS:
        if name in body and not isinstance(body[name], list):
            return f"{name}: Input should be a valid list"
    for name in OBJECT_FIELDS:
        if body.get(name) is not None and not isinstance(body[name], dict):
            return f"{name}: Input should be a valid dictionary"
    tools = body.get("tools") or []
    if any(not isinstance(tool, dict) for tool in tools):
        return "tools.0: Input should be a valid dictionary"
    return None


def _ratelimit_headers(input_tokens: Any = 0) -> dict[str, str]:
    # A usage override may garble the count (a test of the gateway's validation).
    if isinstance(input_tokens, bool) or not isinstance(input_tokens, int):
        input_tokens = 0
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    headers = {}
    for kind, limit, used in (
        ("requests", RATE_LIMIT_REQUESTS, 1),
        ("tokens", RATE_LIMIT_TOKENS, input_tokens),
        ("input-tokens", RATE_LIMIT_TOKENS, input_tokens),
        ("output-tokens", RATE_LIMIT_TOKENS // 5, 0),
    ):
        headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{kind}-remaining"] = str(max(0, limit - used))
        headers[f"anthropic-ratelimit-{kind}-reset"] = reset
    return headers


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> tuple[int, dict]:
    """One page of a list endpoint, as Anthropic pages them (docs.anthropic.com/en/api/
    models-list, "Query parameters" and "Response"): `limit` 1-1000, default 20; `after_id`
    gives the page right after that object, `before_id` the page right before it; `has_more`
    says whether there are more results in the requested direction; `first_id`/`last_id`
    are the page's first and last ids (the cursors of the previous and next pages)."""
    try:
        limit = int(query.get("limit", ["20"])[0])
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        return 400, _error_body("invalid_request_error", "limit: must be from 1 to 1000")
    ids = [item["id"] for item in items]
    after, before = query.get("after_id", [None])[0], query.get("before_id", [None])[0]
    if before is not None:
        end = ids.index(before) if before in ids else len(ids)
        start = max(0, end - limit)
        more = start > 0
    else:
        start = ids.index(after) + 1 if after in ids else 0
        end = min(len(ids), start + limit)
        more = end < len(ids)
    data = items[start:end]
    return 200, {
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _model_object(model: dict[str, str]) -> dict[str, Any]:
    return {"type": "model", "created_at": "2025-09-29T00:00:00Z", **model}


def _listing(path: str):
    """The GET route for ``path``: a function of the query giving (status, payload), or
    None where the API has no such path."""
    if path == "/v1/models":
        return lambda query: _page([_model_object(m) for m in MODELS], query)
    if path.startswith("/v1/models/"):
        # models.retrieve: an unknown id is a 404 not_found_error (docs.claude.com/en/api/
        # errors: "404 - not_found_error: The requested resource was not found").
        model_id = path.removeprefix("/v1/models/")
        found = [_model_object(m) for m in MODELS if m["id"] == model_id]
        if found:
            return lambda query: (200, found[0])
        return lambda query: (404, _error_body("not_found_error", f"model: {model_id}"))
    if path in ("/v1/messages/batches", "/v1/files"):
        return lambda query: _page([], query)
    return None


def _batch(body: Any) -> dict[str, Any]:
    """A new Message Batch as ``POST /v1/messages/batches`` answers it (in progress)."""
    requests = body.get("requests") if isinstance(body, dict) else None
    return {
        "id": f"msgbatch_standin_{uuid.uuid4().hex[:16]}",
        "type": "message_batch",
        "processing_status": "in_progress",
        "request_counts": {
            "processing": len(requests or []),
            "succeeded": 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
        "ended_at": None,
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": None,
    }


# Anthropic's model ids: lowercase words and digits joined by hyphens (claude-sonnet-4-5,
# claude-haiku-4-5-20251001). The stand-in serves any such id, and answers any other name
# as the API answers an unknown model: 404 not_found_error "model: <name>".
MODEL_ID = re.compile(r"claude-[a-z0-9]+(?:[-.][a-z0-9]+)*")


def _unknown_model(body: Any) -> str | None:
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str) and not MODEL_ID.fullmatch(model):
        return f"model: {model}"
    return None


# Seconds a 429 asks the client to wait.
RETRY_AFTER_SECONDS = 1


def _retry_advice(status: int) -> dict[str, str]:
    """The retry headers Anthropic sends with an error, and only those: a 429 carries
    `retry-after`, the seconds to wait (docs.claude.com/en/api/rate-limits, "Response
    headers"), and `x-should-retry: true` (a real 429's headers, quoted in
    anthropic-sdk-typescript issue 357). Other errors carry neither; the SDKs then decide by
    status (they retry 408, 409, 429 and 5xx)."""
    if status == 429:
        return {"retry-after": str(RETRY_AFTER_SECONDS), "x-should-retry": "true"}
    return {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: StandInServer

    def log_message(self, format, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except _ConnectionReset:
            self.close_connection = True

    # --- plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, payload: dict[str, Any], extra_headers=None) -> None:
        data = json.dumps(payload).encode()
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0] or 'Status'}"]
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            "request-id": f"req_standin_{uuid.uuid4().hex[:16]}",
            **_ratelimit_headers(),
        }
        headers.update(extra_headers or {})
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        self.wfile.flush()

    def _error(self, kind: str) -> None:
        status, error_type, message = ERRORS[kind]
        self._send(
            status,
            {"type": "error", "error": {"type": error_type, "message": message}},
            _retry_advice(status),
        )

    def _bad_request(self, message: str) -> None:
        self._send(
            400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
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
                RecordedRequest(
                    self.command,
                    self.path,
                    api_key,
                    body,
                    time.monotonic(),
                    self.headers.get("anthropic-version"),
                    self.headers.get("anthropic-beta"),
                    {name.lower(): value for name, value in self.headers.items()},
                )
            )
        if state.latency:
            time.sleep(state.latency)
        behavior = state.behavior_for(api_key)
        if behavior == "timeout":
            time.sleep(state.timeout_sleep)
        if behavior == "connreset":
            # SO_LINGER 0: close() sends a TCP RST, as a dropped proxy connection does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            raise _ConnectionReset
        return api_key, behavior

    # --- routes -----------------------------------------------------------------------------
    def do_GET(self):
        url = urlsplit(self.path)
        answer = _listing(url.path)
        if answer is None:
            self._not_found(f"{self.command} {url.path}")
            return
        _, behavior = self._record(None)
        if behavior in ERRORS:
            self._error(behavior)
            return
        status, payload = answer(parse_qs(url.query))
        self._send(status, payload)

    def do_DELETE(self):
        self._not_found(f"DELETE {urlsplit(self.path).path}")

    def _not_found(self, what: str) -> None:
        self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": what}})

    def do_POST(self):
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path == "/_standin/behavior":
            self._control(body or {})
            return
        if url.path == "/v1/messages/batches":
            _, behavior = self._record(body)
            if behavior in ERRORS:
                self._error(behavior)
            else:
                self._send(200, _batch(body))
            return
        if url.path == "/_standin/metering":
            self._metering_control(body or {})
            return
        if url.path not in ("/v1/messages", "/v1/messages/count_tokens"):
            self._not_found(f"POST {url.path}")
            return
        _, behavior = self._record(body)
        if behavior in ERRORS:
            self._error(behavior)
            return
        unknown = _unknown_model(body)
        if unknown:
            self._not_found(unknown)
            return
        problem = _invalid(body)
        if problem:
            self._bad_request(problem)
            return
        if url.path == "/v1/messages/count_tokens":
            self._send(200, {"input_tokens": input_token_count(body)})
        elif body.get("stream"):
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

    def _metering_control(self, body: dict[str, Any]) -> None:
        """Set the metering shapes of every answer from now on (a bench in another process):
        ``answer_words``, ``stream_word_delay``, ``hidden_thinking_tokens``."""
        state = self.server.state
        with state.lock:
            for name, kind in (
                ("answer_words", int),
                ("stream_word_delay", float),
                ("hidden_thinking_tokens", int),
            ):
                if name in body:
                    setattr(state, name, kind(body[name]))
        self._send(200, {"ok": True})

    def _input_usage(self, body: dict[str, Any]) -> dict[str, Any]:
        """Input tokens of a messages request, split as the API bills them; writes the cache."""
        state = self.server.state
        segments = prompt_segments(body)
        total = max(1, sum(s.tokens for s in segments))
        breakpoints = [i for i, s in enumerate(segments) if s.ttl]
        read = 0
        written = {"5m": 0, "1h": 0}
        if breakpoints:
            model = str(body.get("model"))
            keys = {i: _prefix_key(model, segments[: i + 1]) for i in breakpoints}
            with state.lock:
                hits = [i for i in breakpoints if keys[i] in state.cached_prefixes]
                state.cached_prefixes.update(keys.values())
            start = hits[-1] + 1 if hits else 0
            read = sum(s.tokens for s in segments[:start])
            # Each piece after the cached prefix is written with the TTL of the breakpoint
            # that closes it; nothing after the last breakpoint is cached.
            for i in range(start, breakpoints[-1] + 1):
                closing = next(b for b in breakpoints if b >= i)
                written["1h" if segments[closing].ttl == "1h" else "5m"] += segments[i].tokens
        return {
            "input_tokens": max(0, total - read - written["5m"] - written["1h"]),
            "cache_creation_input_tokens": written["5m"] + written["1h"],
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": written["5m"],
                "ephemeral_1h_input_tokens": written["1h"],
            },
        }

    def _usage(self, body: dict[str, Any], output_tokens: int) -> dict[str, Any]:
        usage = {
            **self._input_usage(body),
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }
        with self.server.state.lock:
            override = dict(self.server.state.usage_override)
        usage = bill_server_tools_and_modes(body, usage)
        usage.update(override)
        return usage

    def _message(self, body: dict[str, Any]) -> None:
        blocks, stop_reason, stop_sequence, output = plan_answer(body)
        blocks, output = metered_answer(body, blocks, output, self.server.state)
        usage = self._usage(body, output)
        self._send(
            200,
            {
                "id": f"msg_standin_{uuid.uuid4().hex[:20]}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
                "usage": usage,
            },
            _ratelimit_headers(usage["input_tokens"]),
        )

    def _chunk(self, event: str, data: dict[str, Any]) -> None:
        payload = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def _stream(self, body: dict[str, Any], *, fail: bool) -> None:
        """Stream the answer in the real API's order: message_start; per block a start, ping
        after the first one, deltas, a stop; message_delta with the final usage; message_stop."""
        blocks, stop_reason, stop_sequence, output = plan_answer(body)
        blocks, output = metered_answer(body, blocks, output, self.server.state)
        usage = self._usage(body, output)
        headers = {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "Transfer-Encoding": "chunked",
            "request-id": f"req_standin_{uuid.uuid4().hex[:16]}",
            **_ratelimit_headers(usage["input_tokens"]),
        }
        head = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.wfile.write((head + "\r\n").encode())
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
        failed = False
        sent = 0  # deltas so far: a failing stream breaks after two, whatever the blocks
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start = {"type": "text", "text": ""}
            elif block["type"] == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
            elif block["type"].endswith("_tool_result"):
                start = block
            else:
                start = {**block, "input": {}}
            self._chunk(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
            if index == 0:
                self._chunk("ping", {"type": "ping"})
            for delta in self._deltas(block):
                if fail and sent == 2:
                    self._chunk(
                        "error",
                        {
                            "type": "error",
                            "error": {"type": "overloaded_error", "message": "Overloaded"},
                        },
                    )
                    failed = True
                    break
                if sent and self.server.state.stream_word_delay:
                    time.sleep(self.server.state.stream_word_delay)
                self._chunk(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
                sent += 1
            if failed:
                break
            self._chunk("content_block_stop", {"type": "content_block_stop", "index": index})
        if not failed:
            self._chunk(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": {
                        "input_tokens": usage["input_tokens"],
                        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                        "cache_read_input_tokens": usage["cache_read_input_tokens"],
                        "output_tokens": usage["output_tokens"],
                        **server_tool_delta_usage(usage),
                    },
                },
            )
            self._chunk("message_stop", {"type": "message_stop"})
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    @staticmethod
    def _deltas(block: dict[str, Any]) -> list[dict[str, Any]]:
        if block["type"].endswith("_tool_result"):
            return []  # a server tool's result arrives whole in its content_block_start
        if block["type"] == "text":
            words = block["text"].split(" ")
            return [
                {"type": "text_delta", "text": word if i == 0 else " " + word}
                for i, word in enumerate(words)
            ]
        if block["type"] == "thinking" and not block["thinking"]:
            return [{"type": "signature_delta", "signature": block["signature"]}]  # omitted
        if block["type"] == "thinking":
            words = block["thinking"].split(" ")
            return [
                {"type": "thinking_delta", "thinking": word if i == 0 else " " + word}
                for i, word in enumerate(words)
            ] + [{"type": "signature_delta", "signature": block["signature"]}]
        partial = json.dumps(block["input"])
        pieces = [partial[i : i + 8] for i in range(0, len(partial), 8)]
        return [{"type": "input_json_delta", "partial_json": p} for p in ["", *pieces]]


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

    def set_usage_override(self, usage: dict[str, Any] | None) -> None:
        """Make every answer report these usage fields (None: report the real counts)."""
        with self.state.lock:
            self.state.usage_override = dict(usage or {})

    def reset(self) -> None:
        with self.state.lock:
            self.state.usage_override = {}
            self.state.cached_prefixes.clear()
            self.state.behaviors.clear()
            self.state.hint_behaviors.clear()
            self.state.requests.clear()
            self.state.connections = 0
            self.state.latency = 0.0
            self.state.stream_word_delay = 0.0
            self.state.hidden_thinking_tokens = 0
            self.state.answer_words = 0
            self.state.hidden_thinking_billed.clear()

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
