"""How many tokens a Messages request can be billed for, estimated on the high side before
it is sent: text by its UTF-8 bytes, images by their size, PDFs by their pages.

The provider adapter's knowledge of Anthropic's tokenization rules; the credits layer turns
the estimate into credits (``credits.pricing.hold_amount``). See
docs/decisions/083-holds-cover-every-kind-of-content.md and 112.
"""

from __future__ import annotations

import binascii
import math
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Estimation constants for holds (see estimate_request_input_tokens).
BYTES_PER_TOKEN_ESTIMATE = 2
TOKENS_PER_MESSAGE_OVERHEAD = 8
TOKENS_PER_REQUEST_OVERHEAD = 32
# The system prompt Anthropic adds when tools are given: 346 tokens at most on current
# models (build-with-claude/tool-use), up to 530 on older ones; rounded up.
TOKENS_FOR_TOOL_USE = 700
# An image costs about width x height / 750 tokens, or one per 28 x 28 px patch, after it is
# scaled down to the model's largest native size: 1568 px / ~1.15 MP on most models (~1,600
# tokens), 2576 px / ~3.75 MP on the high-resolution ones (~4,800). The cap covers both; an
# image whose size cannot be read from its header (or a URL or file) is held at the cap.
TOKENS_PER_IMAGE = 5_000
# A PDF page is sent as an image of the page plus its text ("typically 1,500-3,000 tokens
# per page", build-with-claude/pdf-support): the image cap plus a dense page of text.
TOKENS_PER_PDF_PAGE = TOKENS_PER_IMAGE + 5_000
# The most pages the API reads from one PDF (100; 600 with 1M-token context), for a PDF
# whose pages cannot be counted.
PDF_MAX_PAGES = 600
# The smallest a page object can be in a PDF file: a bound on the pages of an uncountable one.
MIN_BYTES_PER_PDF_PAGE = 40


# The largest context window of any model: the API refuses, and does not bill, a prompt
# longer than the model's window, so no request is billed for more input than this.
MAX_CONTEXT_TOKENS = 1_000_000
# Enough of a base64 image to reach the size in its header (JPEG's can follow large EXIF).
IMAGE_HEADER_BASE64_CHARS = 96 * 1024
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_PDF_COUNT = re.compile(rb"/Count\s+(\d{1,7})")


@dataclass(slots=True)
class _Tally:
    text_bytes: int = 0
    tokens: int = 0  # images and document pages, counted by their own rules


def _decode_base64(data: Any, limit: int | None = None) -> bytes:
    if not isinstance(data, str):
        return b""
    chunk = data if limit is None else data[:limit]
    chunk = chunk[: len(chunk) - len(chunk) % 4]
    try:
        return binascii.a2b_base64(chunk)
    except (binascii.Error, ValueError):
        return b""


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """Return (width, height) read from a PNG, GIF, WebP or JPEG header, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        kind = data[12:16]
        if kind == b"VP8X":
            width = int.from_bytes(data[24:27], "little") + 1
            return width, int.from_bytes(data[27:30], "little") + 1
        if kind == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        return None
    if data.startswith(b"\xff\xd8"):
        position = 2
        while position + 4 <= len(data):
            if data[position] != 0xFF:
                position += 1
                continue
            marker = data[position + 1]
            if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD9:
                position += 1 if marker == 0xFF else 2
                continue
            # Start-of-frame markers carry the size; C4 (Huffman), C8 and CC (arithmetic
            # coding) share the range but do not.
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                if position + 9 > len(data):
                    return None
                height, width = struct.unpack(">HH", data[position + 5 : position + 9])
                return width, height
            (length,) = struct.unpack(">H", data[position + 2 : position + 4])
            position += 2 + length
    return None


def image_tokens_bound(block: Mapping[str, Any]) -> int:
    """The most one image block can be billed: by its size when the header tells it, else
    the per-image cap."""
    source = block.get("source")
    if not isinstance(source, Mapping) or source.get("type") != "base64":
        return TOKENS_PER_IMAGE
    data = source.get("data")
    size = image_dimensions(_decode_base64(data, IMAGE_HEADER_BASE64_CHARS))
    if size is None and isinstance(data, str) and len(data) > IMAGE_HEADER_BASE64_CHARS:
        size = image_dimensions(_decode_base64(data))
    if not size or not all(size):
        return TOKENS_PER_IMAGE
    width, height = size
    by_area = math.ceil(width * height / 750)
    by_patches = math.ceil(width / 28) * math.ceil(height / 28)
    return min(TOKENS_PER_IMAGE, max(by_area, by_patches))


def pdf_pages_bound(data: bytes) -> int:
    """The most pages a PDF can have: its page objects or page-tree count, whichever is more;
    when neither can be read (compressed object streams), what its size allows."""
    pages = len(_PDF_PAGE.findall(data))
    counts = [int(n) for n in _PDF_COUNT.findall(data)]
    found = max([pages, *counts])
    if found == 0:
        found = max(1, len(data) // MIN_BYTES_PER_PDF_PAGE)
    return min(PDF_MAX_PAGES, found)


def _document(block: Mapping[str, Any], tally: _Tally) -> None:
    for key in ("title", "context"):
        _walk(block.get(key), tally)
    source = block.get("source")
    if not isinstance(source, Mapping):
        tally.tokens += PDF_MAX_PAGES * TOKENS_PER_PDF_PAGE
        return
    kind = source.get("type")
    if kind == "text":
        _walk(source.get("data"), tally)
    elif kind == "content":
        _walk(source.get("content"), tally)
    elif kind == "base64" and source.get("media_type") == "application/pdf":
        tally.tokens += pdf_pages_bound(_decode_base64(source.get("data"))) * TOKENS_PER_PDF_PAGE
    elif kind == "base64":
        tally.text_bytes += len(_decode_base64(source.get("data")))
    else:
        # A URL or an uploaded file the gateway cannot read: the largest PDF there can be.
        tally.tokens += PDF_MAX_PAGES * TOKENS_PER_PDF_PAGE


def _walk(value: Any, tally: _Tally) -> None:
    if isinstance(value, str):
        tally.text_bytes += len(value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "image":
            tally.tokens += image_tokens_bound(value)
            return
        if kind == "document":
            _document(value, tally)
            return
        for key, item in value.items():
            tally.text_bytes += len(str(key))
            _walk(item, tally)
    elif isinstance(value, Iterable) and not isinstance(value, bytes | bytearray):
        for item in value:
            _walk(item, tally)
    elif value is not None:
        tally.text_bytes += len(str(value))


def estimate_request_input_tokens(body: Mapping[str, Any]) -> int:
    """Estimate, on the high side, the input tokens a Messages request can be billed for.

    Every string of the prompt (system, messages, tool definitions and tool_choice, JSON
    keys included) counts one token per two UTF-8 bytes: Claude's tokenizers average 3-4
    characters of English per token, and a CJK character (3 bytes) is at most about a token
    and a half here. Images count by their size (capped per image), PDFs by their pages,
    tools add Anthropic's tool-use system prompt, and messages a small overhead each. The
    result never exceeds the largest context window.
    """
    tally = _Tally()
    for key in ("system", "messages", "tools", "tool_choice"):
        _walk(body.get(key), tally)
    messages = body.get("messages")
    message_count = len(messages) if isinstance(messages, list | tuple) else 1
    estimate = (
        math.ceil(tally.text_bytes / BYTES_PER_TOKEN_ESTIMATE)
        + tally.tokens
        + message_count * TOKENS_PER_MESSAGE_OVERHEAD
        + TOKENS_PER_REQUEST_OVERHEAD
        + (TOKENS_FOR_TOOL_USE if body.get("tools") else 0)
    )
    return min(MAX_CONTEXT_TOKENS, estimate)


def output_tokens_bound(body: Mapping[str, Any]) -> int:
    """The most output tokens a request can be billed for: ``max_tokens``, or the thinking
    budget when it is larger (interleaved thinking lets the budget pass ``max_tokens``)."""
    limit = body.get("max_tokens")
    most = limit if isinstance(limit, int) and not isinstance(limit, bool) else 0
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping):
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool):
            most = max(most, budget)
    return max(0, most)
