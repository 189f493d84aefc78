"""Messages requests of every kind of content, for hold tests and bench/hold_estimate.py."""

from tests.media import gif, image_block, jpeg, pdf, pdf_block, png, webp

WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city, in the unit asked for.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
}
SEARCH = {
    "name": "search_docs",
    "description": "Full-text search over the workspace's documents. " * 5,
    "input_schema": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["query"],
    },
}
ENGLISH = "The quick brown fox jumps over the lazy dog while the cat watches. " * 60
CJK = "日本語のテキストと中文的文字が混ざった文章です。" * 80
CODE = "def handler(event):\n    return {'status': 200, 'body': event['body'][::-1]}\n" * 40


def _user(content) -> list[dict]:
    return [{"role": "user", "content": content}]


def _ask(content, max_tokens=1_024, **extra) -> dict:
    return {"max_tokens": max_tokens, "messages": _user(content), **extra}


def _ephemeral(ttl=None) -> dict:
    return {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}


CORPUS: dict[str, dict] = {
    "short text": _ask("Hello!", max_tokens=64),
    "english": _ask(ENGLISH, system="You are a concise assistant."),
    "cjk": _ask(CJK),
    "code": _ask(CODE, system=[{"type": "text", "text": "Review this code."}]),
    "conversation": {
        "max_tokens": 512,
        "messages": [
            {"role": "user", "content": "Plan a trip to Lisbon."},
            {"role": "assistant", "content": "Three days: Alfama, Belém, Sintra. " * 20},
            {"role": "user", "content": [{"type": "text", "text": "Make it five days."}]},
        ],
    },
    "tools": _ask("What's the weather in Paris?", tools=[WEATHER, SEARCH]),
    "tool choice any": _ask("Weather?", tools=[WEATHER], tool_choice={"type": "any"}),
    "tool result turn": {
        "max_tokens": 512,
        "tools": [WEATHER],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "get_weather",
                        "input": {"city": "Paris", "unit": "celsius"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C, sunny"}
                ],
            },
        ],
    },
    "small png": _ask([image_block(png(200, 200)), {"type": "text", "text": "Describe it."}]),
    "square png": _ask([image_block(png(1092, 1092)), {"type": "text", "text": "Describe."}]),
    "huge jpeg": _ask(
        [image_block(jpeg(6000, 4000), "image/jpeg"), {"type": "text", "text": "Describe."}]
    ),
    "gif and webp": _ask(
        [
            image_block(gif(640, 480), "image/gif"),
            image_block(webp(1280, 720), "image/webp"),
            {"type": "text", "text": "Compare them."},
        ]
    ),
    "unreadable image": _ask([image_block("bm90IGFuIGltYWdl"), {"type": "text", "text": "?"}]),
    "image in a tool result": {
        "max_tokens": 256,
        "tools": [SEARCH],
        "messages": [
            {"role": "user", "content": "Find the chart."},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_02",
                        "name": "search_docs",
                        "input": {"query": "chart"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_02",
                        "content": [image_block(png(900, 600))],
                    }
                ],
            },
        ],
    },
    "pdf, 3 pages": _ask([pdf_block(pdf(3)), {"type": "text", "text": "Summarise."}]),
    "pdf, 12 pages, titled": _ask(
        [
            pdf_block(pdf(12), title="Annual report", context="Finance"),
            {"type": "text", "text": "?"},
        ]
    ),
    "text document": _ask(
        [
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": ENGLISH},
            },
            {"type": "text", "text": "Summarise."},
        ]
    ),
    "cache 5m system": _ask(
        "Question about the manual?",
        system=[{"type": "text", "text": ENGLISH, "cache_control": _ephemeral()}],
    ),
    "cache 1h tools + 5m system": _ask(
        "Search for the policy.",
        tools=[WEATHER, {**SEARCH, "cache_control": _ephemeral("1h")}],
        system=[{"type": "text", "text": ENGLISH, "cache_control": _ephemeral("5m")}],
    ),
    "cache 1h message": _ask(
        [
            {"type": "text", "text": CODE, "cache_control": _ephemeral("1h")},
            {"type": "text", "text": "?"},
        ]
    ),
    "automatic cache 1h": _ask(CJK, cache_control=_ephemeral("1h")),
    "thinking": _ask(
        "Prove there are infinitely many primes.",
        max_tokens=4_000,
        thinking={"type": "enabled", "budget_tokens": 2_000},
    ),
    "everything": {
        "max_tokens": 8_000,
        "thinking": {"type": "enabled", "budget_tokens": 4_000},
        "tools": [WEATHER, {**SEARCH, "cache_control": _ephemeral("1h")}],
        "system": [{"type": "text", "text": ENGLISH, "cache_control": _ephemeral()}],
        "messages": _user(
            [
                pdf_block(pdf(2)),
                image_block(png(1500, 1000)),
                {"type": "text", "text": CJK},
            ]
        ),
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
    },
}
