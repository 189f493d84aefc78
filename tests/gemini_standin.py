"""A stand-in for Google's Gemini API (the API-key flavour) on loopback, for tests,
benchmarks and offline demos.

Written from the Gemini API reference, so the official ``google-genai`` SDK works against it
unchanged (``genai.Client(api_key=..., http_options=HttpOptions(base_url=standin.url))``).
Every route answers under ``/v1beta`` and ``/v1`` (newer SDKs call ``/v1`` by default):

- ``GET /{version}/models`` (``pageSize``, ``pageToken``) and ``GET /{version}/models/{model}``
  (https://ai.google.dev/api/models);
- ``POST .../models/{model}:generateContent`` and ``:streamGenerateContent`` — with
  ``?alt=sse`` as server-sent events, each ``data:`` a whole ``GenerateContentResponse``
  whose ``usageMetadata`` holds the counts so far, the last one the final counts and the
  ``finishReason``; without it, one JSON array (https://ai.google.dev/api/generate-content);
- usage as Google reports it: ``thoughtsTokenCount`` for a 2.5 model that thinks (off with
  ``thinkingConfig.thinkingBudget: 0``; thoughts count against ``maxOutputTokens``,
  https://ai.google.dev/gemini-api/docs/thinking) and ``cachedContentTokenCount`` when a
  prompt of at least 1,024 tokens repeats (implicit caching,
  https://ai.google.dev/gemini-api/docs/caching);
- ``:countTokens`` (``contents`` or a whole ``generateContentRequest``,
  https://ai.google.dev/api/tokens), ``:embedContent`` and ``:batchEmbedContents``
  (``outputDimensionality``, https://ai.google.dev/api/embeddings);
- errors as ``google.rpc.Status`` JSON, ``{"error": {"code", "message", "status",
  "details"}}`` (https://cloud.google.com/apis/design/errors), with the statuses of
  https://ai.google.dev/gemini-api/docs/troubleshooting: a bad, revoked or expired key is
  400 ``INVALID_ARGUMENT`` with an ``ErrorInfo`` of reason ``API_KEY_INVALID`` (not 401); a
  key whose project may not use the API 403 ``PERMISSION_DENIED``; no key 403; 429
  ``RESOURCE_EXHAUSTED`` with a ``RetryInfo``; 500 ``INTERNAL``; 503 ``UNAVAILABLE`` when
  overloaded; 504 ``DEADLINE_EXCEEDED``; an unknown model 404 ``NOT_FOUND``.

Keys arrive in ``x-goog-api-key`` (or ``?key=``). The markers of ``tests/standin_base``
choose a behaviour; otherwise a key of Google's shape (``AIza`` and 35 characters) is
accepted. Run it by hand: ``python -m tests.gemini_standin --port 8767``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
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

GEMINI_KEY = re.compile(r"AIza[A-Za-z0-9_-]{35}")
GENERATE_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
MODELS = [
    {
        "name": "models/gemini-2.5-flash",
        "version": "001",
        "displayName": "Gemini 2.5 Flash",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": GENERATE_METHODS,
        "thinking": True,
    },
    {
        "name": "models/gemini-2.5-pro",
        "version": "2.5",
        "displayName": "Gemini 2.5 Pro",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": GENERATE_METHODS,
        "thinking": True,
    },
    {
        "name": "models/gemini-embedding-001",
        "version": "001",
        "displayName": "Gemini Embedding 001",
        "inputTokenLimit": 2_048,
        "outputTokenLimit": 1,
        "supportedGenerationMethods": ["embedContent", "countTextTokens", "countTokens"],
    },
]
MODELS_BY_ID = {m["name"].removeprefix("models/"): m for m in MODELS}
EMBEDDING_DIMENSIONS = {"gemini-embedding-001": 3072}
THOUGHTS_TOKENS = 48
CACHE_MINIMUM_TOKENS = 1024
ROUTE = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(\w+)$")

SERVICE = "generativelanguage.googleapis.com"


def _error_info(reason: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": SERVICE},
    }


ERRORS: dict[str, tuple[int, str, str, list[dict[str, Any]]]] = {
    "malformed": (
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [_error_info("API_KEY_INVALID")],
    ),
    "revoked": (
        400,
        "INVALID_ARGUMENT",
        "API key expired. Please renew the API key.",
        [_error_info("API_KEY_INVALID")],
    ),
    "nokey": (
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
        [],
    ),
    "forbidden": (
        403,
        "PERMISSION_DENIED",
        "Generative Language API has not been used in this project before or it is disabled.",
        [_error_info("SERVICE_DISABLED")],
    ),
    "ratelimited": (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
        [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}],
    ),
    "servererror": (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
        [],
    ),
    "overloaded": (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", []),
    "requesttimeout": (
        504,
        "DEADLINE_EXCEEDED",
        "Deadline expired before operation could complete.",
        [],
    ),
    "conflict": (409, "ABORTED", "The operation was aborted.", []),
}


def status_body(code: int, status: str, message: str, details=()) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


def _texts(contents: Any) -> list[str]:
    """The text parts of ``contents`` (a list of Content, one Content, or a string)."""
    if isinstance(contents, str):
        return [contents]
    if isinstance(contents, dict):
        contents = [contents]
    texts = []
    for content in contents or []:
        for part in (content or {}).get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return texts


def camel_keys(value: Any) -> Any:
    """The body with every field named in lowerCamelCase: Google's JSON parser takes a proto
    field by its original snake_case name as well (https://protobuf.dev/programming-guides/json/),
    and the SDK sends some that way (``thinking_budget``)."""
    if isinstance(value, dict):
        return {
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): camel_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


def embedding(text: str, dimensions: int) -> list[float]:
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(text.encode() + counter.to_bytes(4, "little")).digest()
        values.extend((byte - 127.5) / 127.5 for byte in digest)
        counter += 1
    return [round(v, 6) for v in values[:dimensions]]


class Handler(BaseHandler):
    def api_key(self) -> str | None:
        return self.headers.get("x-goog-api-key") or self.query.get("key") or None

    def well_formed(self, api_key: str) -> bool:
        return GEMINI_KEY.fullmatch(api_key) is not None

    def error(self, behavior: str) -> None:
        code, status, message, details = ERRORS[behavior]
        self.send_json(code, status_body(code, status, message, details))

    def invalid(self, message: str) -> None:
        self.send_json(400, status_body(400, "INVALID_ARGUMENT", message))

    def not_found(self, message: str = "Requested entity was not found.") -> None:
        self.send_json(404, status_body(404, "NOT_FOUND", message))

    def do_GET(self):
        match = re.fullmatch(r"/(v1beta|v1)/models(?:/([^/:]+))?", self.url.path)
        if not match:
            self.not_found()
            return
        _, behavior = self.record(None)
        if behavior in ERROR_BEHAVIORS:
            self.error(behavior)
            return
        version, model = match.groups()
        if model:
            if model not in MODELS_BY_ID:
                self.not_found(f"models/{model} is not found for API version {version}")
                return
            self.send_json(200, self._model(MODELS_BY_ID[model]))
            return
        size = int(self.query.get("pageSize") or 50)
        start = int(self.query.get("pageToken") or 0)
        page = MODELS[start : start + size]
        answer: dict[str, Any] = {"models": [self._model(m) for m in page]}
        if start + size < len(MODELS):
            answer["nextPageToken"] = str(start + size)
        self.send_json(200, answer)

    @staticmethod
    def _model(model: dict[str, Any]) -> dict[str, Any]:
        return {"description": model["displayName"], **model}

    def do_POST(self):
        body = self.read_json()
        if self.url.path == "/_standin/behavior":
            self.control(body or {})
            return
        match = ROUTE.fullmatch(self.url.path)
        methods = {
            "generateContent": self.generate,
            "streamGenerateContent": self.stream,
            "countTokens": self.count_tokens,
            "embedContent": self.embed,
            "batchEmbedContents": self.batch_embed,
        }
        if not match or match.group(3) not in methods:
            self.not_found()
            return
        _, behavior = self.record(body)
        if behavior in ERROR_BEHAVIORS:
            self.error(behavior)
            return
        version, model, method = match.groups()
        if model not in MODELS_BY_ID:
            self.not_found(
                f"models/{model} is not found for API version {version}, "
                f"or is not supported for {method}."
            )
            return
        if not isinstance(body, dict):
            self.invalid("Invalid JSON payload received.")
            return
        methods[method](
            model, camel_keys(body), fail=behavior if behavior in STREAM_BREAKS else None
        )

    # --- generation -------------------------------------------------------------------------
    def _plan(self, model: str, body: dict[str, Any]):
        """The answer's words, finish reason and usage for a generateContent request."""
        contents = body.get("contents")
        if not contents:
            self.invalid("* GenerateContentRequest.contents: contents is not specified")
            return None
        texts = _texts(contents)
        prompt = [body.get("systemInstruction"), contents, body.get("tools")]
        prompt_tokens = estimate_tokens(prompt)
        config = body.get("generationConfig") or {}
        budget = (config.get("thinkingConfig") or {}).get("thinkingBudget")
        thoughts = THOUGHTS_TOKENS if MODELS_BY_ID[model].get("thinking") and budget != 0 else 0
        words = [
            "This",
            "is",
            "the",
            "stand-in's",
            "answer",
            "to:",
            *words_of(" ".join(texts))[:40],
        ]
        words = lengthened(words, self.server.state.answer_words)
        limit = config.get("maxOutputTokens")
        finish = "STOP"
        if isinstance(limit, int) and limit < thoughts + len(words):
            words, finish = words[: max(0, limit - thoughts)], "MAX_TOKENS"
        cached = 0
        if prompt_tokens >= CACHE_MINIMUM_TOKENS:
            key = hashlib.sha256(f"{model}\0{json.dumps(prompt)}".encode()).hexdigest()
            state = self.server.state
            with state.lock:
                cached = prompt_tokens if key in state.prompt_cache else 0
                state.prompt_cache.add(key)
        return words, finish, prompt_tokens, thoughts, cached

    @staticmethod
    def _usage(prompt_tokens: int, candidates: int, thoughts: int, cached: int) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt_tokens + candidates + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        }
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        if cached:
            usage["cachedContentTokenCount"] = cached
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
        return usage

    @staticmethod
    def _response(model, response_id, text, finish, usage) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if finish:
            candidate["finishReason"] = finish
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": response_id,
        }

    def generate(self, model: str, body: dict[str, Any], *, fail: str | None) -> None:
        plan = self._plan(model, body)
        if plan is None:
            return
        words, finish, prompt_tokens, thoughts, cached = plan
        usage = self._usage(prompt_tokens, len(words), thoughts, cached)
        self.send_json(200, self._response(model, request_id(""), " ".join(words), finish, usage))

    def stream(self, model: str, body: dict[str, Any], *, fail: str | None) -> None:
        plan = self._plan(model, body)
        if plan is None:
            return
        words, finish, prompt_tokens, thoughts, cached = plan
        response_id = request_id("")
        # A few words per chunk, as the API sends; the usage so far rides on every chunk.
        pieces = [words[i : i + 4] for i in range(0, len(words), 4)] or [[]]
        chunks, sent = [], 0
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            text = " ".join(piece) + ("" if last else " ")
            sent += len(piece)
            usage = self._usage(prompt_tokens, sent, thoughts, cached)
            if not last:
                usage.pop("candidatesTokenCount")
                usage["totalTokenCount"] = prompt_tokens + thoughts
            chunks.append(self._response(model, response_id, text, finish if last else None, usage))
        if self.query.get("alt") != "sse":
            self.send_json(200, chunks)
            return
        self.start_events()
        for index, chunk in enumerate(chunks):
            if fail == "streamstall" and index == len(chunks) // 2:
                self.stall()
                return
            if fail and index == len(chunks) // 2:
                self.send_event(
                    json.dumps(status_body(500, "INTERNAL", "An internal error has occurred.")),
                    end="\r\n\r\n",
                )
                return
            # Google ends each event with CRLF CRLF.
            self.send_event(json.dumps(chunk), end="\r\n\r\n")
            if self.server.state.stream_word_delay:
                # A slow answer, chunk by chunk (tests that meter a stream as it arrives).
                time.sleep(self.server.state.stream_word_delay)

    def count_tokens(self, model: str, body: dict[str, Any], *, fail: str | None) -> None:
        request = body.get("generateContentRequest") or body
        contents = request.get("contents")
        if not contents:
            self.invalid("* CountTokensRequest.contents: contents is not specified")
            return
        prompt = [request.get("systemInstruction"), contents, request.get("tools")]
        total = estimate_tokens(prompt)
        self.send_json(
            200,
            {
                "totalTokens": total,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}],
            },
        )

    # --- embeddings ---------------------------------------------------------------------------
    def _embedding(self, model: str, request: dict[str, Any]) -> dict[str, Any] | None:
        if model not in EMBEDDING_DIMENSIONS:
            self.invalid(f"models/{model} does not support embedContent.")
            return None
        texts = _texts(request.get("content"))
        if not texts:
            self.invalid("* EmbedContentRequest.content: contents is not specified")
            return None
        dimensions = request.get("outputDimensionality") or EMBEDDING_DIMENSIONS[model]
        return {"values": embedding(" ".join(texts), dimensions)}

    def embed(self, model: str, body: dict[str, Any], *, fail: str | None) -> None:
        vector = self._embedding(model, body)
        if vector is not None:
            self.send_json(200, {"embedding": vector})

    def batch_embed(self, model: str, body: dict[str, Any], *, fail: str | None) -> None:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            self.invalid("* BatchEmbedContentsRequest.requests: requests is not specified")
            return
        vectors = []
        for request in requests:
            if (request.get("model") or f"models/{model}") != f"models/{model}":
                self.invalid("Model in the request must match the model in the batch request URL.")
                return
            vector = self._embedding(model, request)
            if vector is None:
                return
            vectors.append(vector)
        self.send_json(200, {"embeddings": vectors})


class GeminiStandIn(StandIn):
    handler = Handler

    @property
    def base_url(self) -> str:
        """What ``GEMINI_BASE_URL`` and the SDK's ``base_url`` take (the SDK adds the version)."""
        return self.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767)
    args = parser.parse_args()
    standin = GeminiStandIn(args.host, args.port)
    print(f"Gemini stand-in on {standin.url} (set GEMINI_BASE_URL={standin.base_url})")
    try:
        standin.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin.server.server_close()


if __name__ == "__main__":
    main()
