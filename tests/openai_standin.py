"""A stand-in for OpenAI's API on loopback, for tests, benchmarks and offline demos.

Written from OpenAI's API reference, so the official ``openai`` SDK works against it
unchanged (``OpenAI(base_url=standin.url + "/v1", api_key=...)``):

- ``GET /v1/models`` and ``GET /v1/models/{id}``
  (https://platform.openai.com/docs/api-reference/models/list);
- ``POST /v1/chat/completions``, plain and streamed; a stream reports usage only when the
  request asks with ``stream_options.include_usage``: then every chunk carries
  ``"usage": null`` and one extra chunk with empty ``choices`` and the whole request's usage
  comes before ``data: [DONE]``
  (https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options);
- ``POST /v1/responses``, plain and streamed as typed events from ``response.created`` to
  ``response.completed`` (which carries the usage), with no ``[DONE]``
  (https://platform.openai.com/docs/api-reference/responses/create,
  https://platform.openai.com/docs/api-reference/responses-streaming);
- ``POST /v1/embeddings``, as floats or as base64 little-endian float32, which the SDK asks
  for by default (https://platform.openai.com/docs/api-reference/embeddings/create);
- usage as OpenAI reports it: ``prompt_tokens_details.cached_tokens`` when a prompt of at
  least 1,024 tokens repeats a prefix seen before, in 128-token steps
  (https://platform.openai.com/docs/guides/prompt-caching), and
  ``completion_tokens_details.reasoning_tokens`` (counted in the completion tokens) when a
  reasoning model is asked for an effort above ``minimal``
  (https://platform.openai.com/docs/guides/reasoning);
- errors in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``
  (https://platform.openai.com/docs/guides/error-codes): a wrong key 401
  ``invalid_api_key`` (the message masks the key as OpenAI's does), no key 401, a key
  refused for its region 403, 429 ``rate_limit_exceeded`` with ``retry-after``, 500
  ``server_error``, 503 when overloaded; an unknown model 404 ``model_not_found``.

Keys: the markers of ``tests/standin_base`` choose a behaviour; otherwise a key starting
``sk-`` (and not Anthropic's ``sk-ant-``) is accepted. Every request is recorded
(``requests``). Run it by hand: ``python -m tests.openai_standin --port 8766``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import time
from typing import Any

from tests.standin_base import (
    ERROR_BEHAVIORS,
    STREAM_BREAKS,
    BaseHandler,
    StandIn,
    estimate_tokens,
    lengthened,
    request_id,
    words_of,
)

MODELS = [
    {"id": "gpt-5-mini", "created": 1754425777, "owned_by": "system"},
    {"id": "gpt-5", "created": 1754425777, "owned_by": "system"},
    {"id": "gpt-4.1-mini", "created": 1744318173, "owned_by": "system"},
    {"id": "text-embedding-3-small", "created": 1705948997, "owned_by": "system"},
]
MODEL_IDS = {m["id"] for m in MODELS}
EMBEDDING_DIMENSIONS = {"text-embedding-3-small": 1536}
REASONING_MODEL_PREFIXES = ("gpt-5", "o")
# What a reasoning model "thinks" per answer here; OpenAI reports it in
# completion_tokens_details.reasoning_tokens and bills it as output.
REASONING_TOKENS = 64
CACHE_MINIMUM_TOKENS = 1024
CACHE_STEP_TOKENS = 128

ERRORS = {
    "malformed": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    "revoked": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    "nokey": (
        401,
        "invalid_request_error",
        None,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    ),
    "forbidden": (
        403,
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    "ratelimited": (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. "
        "Please try again in 120ms.",
    ),
    "servererror": (
        500,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "overloaded": (
        503,
        "service_unavailable_error",
        "server_is_overloaded",
        "The engine is currently overloaded, please try again later.",
    ),
    "requesttimeout": (408, "timeout_error", None, "Request timed out."),
    "conflict": (409, "conflict_error", None, "Conflict."),
}


def masked(key: str) -> str:
    """OpenAI's way of naming a wrong key in its message: a few leading characters, then
    stars, then the last four."""
    return f"{key[:3]}{'*' * 12}{key[-4:]}" if len(key) > 8 else "*" * len(key)


def error_body(message: str, error_type: str, code: str | None, param: str | None = None):
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text") or "") for part in content if isinstance(part, dict)
        ).strip()
    return ""


def reply_words(prompt: str) -> list[str]:
    return ["This", "is", "the", "stand-in's", "answer", "to:", *words_of(prompt)[:40]]


def embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic unit-ish vector per text (the same text, the same vector)."""
    values: list[float] = []
    seed = text.encode()
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        values.extend((byte - 127.5) / 127.5 for byte in digest)
        counter += 1
    return [round(v, 6) for v in values[:dimensions]]


class Handler(BaseHandler):
    def api_key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() or None if auth.lower().startswith("bearer ") else None

    def well_formed(self, api_key: str) -> bool:
        return api_key.startswith("sk-") and not api_key.startswith("sk-ant-")

    def common_headers(self) -> dict[str, str]:
        # https://platform.openai.com/docs/api-reference/debugging-requests and
        # https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers
        return {
            "x-request-id": request_id("req_"),
            "openai-processing-ms": "12",
            "openai-version": "2020-10-01",
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": "200000",
            "x-ratelimit-remaining-tokens": "199000",
            "x-ratelimit-reset-tokens": "300ms",
        }

    def error(self, behavior: str, api_key: str | None) -> None:
        status, error_type, code, message = ERRORS[behavior]
        headers = {"x-should-retry": "false"}  # keeps SDK retries out of counting tests
        if status == 429:
            headers["retry-after"] = "1"
        self.send_json(
            status,
            error_body(message.format(masked=masked(api_key or "")), error_type, code),
            headers,
        )

    def invalid(self, message: str, param: str | None, code: str | None = None) -> None:
        self.send_json(
            400,
            error_body(message, "invalid_request_error", code, param),
            {"x-should-retry": "false"},
        )

    def not_found(self) -> None:
        self.send_json(
            404,
            error_body(
                f"Invalid URL ({self.command} {self.url.path})", "invalid_request_error", None
            ),
        )

    # --- routes -----------------------------------------------------------------------------
    def do_GET(self):
        path = self.url.path
        if path != "/v1/models" and not path.startswith("/v1/models/"):
            self.not_found()
            return
        api_key, behavior = self.record(None)
        if behavior in ERROR_BEHAVIORS:
            self.error(behavior, api_key)
            return
        if path == "/v1/models":
            self.send_json(
                200, {"object": "list", "data": [{"object": "model", **m} for m in MODELS]}
            )
            return
        model = path.removeprefix("/v1/models/")
        found = [m for m in MODELS if m["id"] == model]
        if not found:
            self.model_not_found(model)
            return
        self.send_json(200, {"object": "model", **found[0]})

    def do_POST(self):
        path = self.url.path
        body = self.read_json()
        if path == "/_standin/behavior":
            self.control(body or {})
            return
        routes = {
            "/v1/chat/completions": self.chat_completions,
            "/v1/responses": self.create_response,
            "/v1/embeddings": self.embeddings,
        }
        if path not in routes:
            self.not_found()
            return
        api_key, behavior = self.record(body)
        if behavior in ERROR_BEHAVIORS:
            self.error(behavior, api_key)
            return
        if not isinstance(body, dict):
            self.invalid("We could not parse the JSON body of your request.", None)
            return
        model = body.get("model")
        if not model:
            self.invalid(
                "Missing required parameter: 'model'.", "model", "missing_required_parameter"
            )
            return
        if model not in MODEL_IDS:
            self.model_not_found(model)
            return
        routes[path](body, fail=behavior if behavior in STREAM_BREAKS else None)

    def model_not_found(self, model: str) -> None:
        self.send_json(
            404,
            error_body(
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            ),
            {"x-should-retry": "false"},
        )

    # --- usage --------------------------------------------------------------------------------
    def prompt_usage(self, model: str, prompt: Any) -> tuple[int, int]:
        """Prompt tokens and how many of them were read from the prompt cache."""
        tokens = estimate_tokens(prompt)
        if tokens < CACHE_MINIMUM_TOKENS:
            return tokens, 0
        key = hashlib.sha256(f"{model}\0{prompt!r}".encode()).hexdigest()
        state = self.server.state
        with state.lock:
            hit = key in state.prompt_cache
            state.prompt_cache.add(key)
        return tokens, (tokens // CACHE_STEP_TOKENS) * CACHE_STEP_TOKENS if hit else 0

    @staticmethod
    def reasoning_tokens(model: str, effort: str | None) -> int:
        if not model.startswith(REASONING_MODEL_PREFIXES) or effort in ("minimal", "none"):
            return 0
        return REASONING_TOKENS

    def answer_words(self, prompt_text: str) -> list[str]:
        return lengthened(reply_words(prompt_text), self.server.state.answer_words)

    @staticmethod
    def plan(words: list[str], limit: Any, reasoning: int) -> tuple[list[str], bool]:
        """The words that fit the output limit (one token each, after reasoning)."""
        if isinstance(limit, int) and limit < reasoning + len(words):
            return words[: max(0, limit - reasoning)], True
        return words, False

    # --- chat completions -----------------------------------------------------------------
    def chat_completions(self, body: dict[str, Any], *, fail: str | None) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self.invalid(
                "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
            )
            return
        model = body["model"]
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        prompt_text = _text_of(users[-1].get("content")) if users else ""
        prompt_tokens, cached = self.prompt_usage(model, messages)
        reasoning = self.reasoning_tokens(model, body.get("reasoning_effort"))
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        words, cut = self.plan(self.answer_words(prompt_text), limit, reasoning)
        completion_tokens = len(words) + reasoning
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        finish_reason = "length" if cut else "stop"
        base = {
            "id": request_id("chatcmpl-"),
            "created": int(time.time()),
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_standin",
        }
        if not body.get("stream"):
            message = {"role": "assistant", "content": " ".join(words), "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None}
            self.send_json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [{**choice, "finish_reason": finish_reason}],
                    "usage": usage,
                },
            )
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return _dumps({**base, "object": "chat.completion.chunk", "choices": [choice], **extra})

        self.start_events()
        self.send_event(chunk({"role": "assistant", "content": "", "refusal": None}, None))
        for i, word in enumerate(words):
            if fail == "streamstall" and i == len(words) // 2:
                self.stall()
                return
            if fail and i == len(words) // 2:
                # A failure mid-stream arrives as an event holding an error object.
                self.send_event(
                    _dumps(error_body("The server had an error.", "server_error", None))
                )
                return
            self.send_event(chunk({"content": word if i == 0 else " " + word}, None))
        self.send_event(chunk({}, finish_reason))
        if include_usage:
            self.send_event(
                _dumps({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
            )
        self.send_event("[DONE]")

    # --- responses ----------------------------------------------------------------------------
    def create_response(self, body: dict[str, Any], *, fail: str | None) -> None:
        given = body.get("input")
        if given is None:
            self.invalid(
                "Missing required parameter: 'input'.", "input", "missing_required_parameter"
            )
            return
        model = body["model"]
        if isinstance(given, str):
            prompt_text = given
        else:
            items = [i for i in given if isinstance(i, dict) and i.get("role") == "user"]
            prompt_text = _text_of(items[-1].get("content")) if items else ""
        prompt_tokens, cached = self.prompt_usage(model, [body.get("instructions"), given])
        reasoning = self.reasoning_tokens(model, (body.get("reasoning") or {}).get("effort"))
        words, cut = self.plan(
            self.answer_words(prompt_text), body.get("max_output_tokens"), reasoning
        )
        output_tokens = len(words) + reasoning
        usage = {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt_tokens + output_tokens,
        }
        text = " ".join(words)
        message_id = request_id("msg_")
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item = {
            "type": "message",
            "id": message_id,
            "status": "incomplete" if cut else "completed",
            "role": "assistant",
            "content": [part],
        }
        response = {
            "id": request_id("resp_"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "incomplete" if cut else "completed",
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": model,
            "output": [item],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": body.get("metadata") or {},
        }
        if not body.get("stream"):
            self.send_json(200, response)
            return
        sequence = iter(range(1_000_000))
        pending = {
            **response,
            "status": "in_progress",
            "output": [],
            "usage": None,
            "incomplete_details": None,
        }

        def event(name: str, **data: Any) -> None:
            self.send_event(
                _dumps({"type": name, "sequence_number": next(sequence), **data}), event=name
            )

        self.start_events()
        event("response.created", response=pending)
        event("response.in_progress", response=pending)
        event(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "content": []},
        )
        empty = {**part, "text": ""}
        event(
            "response.content_part.added",
            item_id=message_id,
            output_index=0,
            content_index=0,
            part=empty,
        )
        for i, word in enumerate(words):
            if fail == "streamstall" and i == len(words) // 2:
                self.stall()
                return
            if fail and i == len(words) // 2:
                # The Responses API's own error event (ResponseErrorEvent,
                # https://platform.openai.com/docs/api-reference/responses-streaming/error).
                event("error", code="server_error", message="The server had an error.", param=None)
                return
            event(
                "response.output_text.delta",
                item_id=message_id,
                output_index=0,
                content_index=0,
                delta=word if i == 0 else " " + word,
                logprobs=[],
            )
        event(
            "response.output_text.done",
            item_id=message_id,
            output_index=0,
            content_index=0,
            text=text,
            logprobs=[],
        )
        event(
            "response.content_part.done",
            item_id=message_id,
            output_index=0,
            content_index=0,
            part=part,
        )
        event("response.output_item.done", output_index=0, item=item)
        event("response.incomplete" if cut else "response.completed", response=response)

    # --- embeddings ---------------------------------------------------------------------------
    def embeddings(self, body: dict[str, Any], *, fail: str | None) -> None:
        given = body.get("input")
        inputs = [given] if isinstance(given, str) else given
        if (
            not isinstance(inputs, list)
            or not inputs
            or not all(isinstance(i, str) and i for i in inputs)
        ):
            self.invalid("'input' must be a non-empty string or array of strings.", "input")
            return
        model = body["model"]
        if model not in EMBEDDING_DIMENSIONS:
            self.invalid(f"The model `{model}` does not support embeddings.", "model")
            return
        dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS[model]
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(inputs):
            vector = embedding(text, dimensions)
            value: Any = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": value})
        tokens = sum(estimate_tokens(text) for text in inputs)
        self.send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class OpenAIStandIn(StandIn):
    handler = Handler

    @property
    def base_url(self) -> str:
        """What ``OPENAI_BASE_URL`` and the SDK's ``base_url`` take (the API's ``/v1`` root)."""
        return f"{self.url}/v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    standin = OpenAIStandIn(args.host, args.port)
    print(f"OpenAI stand-in on {standin.url} (set OPENAI_BASE_URL={standin.base_url})")
    try:
        standin.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin.server.server_close()


if __name__ == "__main__":
    main()
