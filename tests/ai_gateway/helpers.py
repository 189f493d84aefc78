"""Helpers for the gateway tests: request bodies, the API call, the ledger as tuples."""

import json

from credits.models import CreditEntry

MODEL = "claude-sonnet-5"
API = "/api/v1/w/acme/messages"


def body(**overrides) -> dict:
    data = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Say hello"}],
    }
    data.update(overrides)
    return data


def post(client, data, *, path: str = API, **extra):
    raw = data if isinstance(data, str | bytes) else json.dumps(data)
    return client.post(path, raw, content_type="application/json", **extra)


def ledger(workspace) -> list[tuple[str, int]]:
    return [
        (entry.kind, entry.amount)
        for entry in CreditEntry.objects.filter(workspace=workspace).order_by("id")
    ]
