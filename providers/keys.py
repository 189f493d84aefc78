"""What each provider's API keys look like: enough to refuse a mistyped or misplaced key
without a network call, to show a stored key masked in its provider's shape, and to find a
key in text that must not hold one (log lines, error reports, echoed input).

Shapes, from each provider's documentation:
- Anthropic: ``sk-ant-`` then ``[A-Za-z0-9_-]`` (``sk-ant-api03-…``);
- OpenAI: ``sk-`` then ``[A-Za-z0-9_-]``; project keys ``sk-proj-…`` (about 164
  characters), service-account keys ``sk-svcacct-…``, older user keys ``sk-`` and 48
  characters (https://platform.openai.com/docs/api-reference/authentication);
- Google Gemini: Google API keys, ``AIza`` and 35 characters of ``[A-Za-z0-9_-]``
  (https://cloud.google.com/docs/authentication/api-keys, https://aistudio.google.com/apikey).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyShape:
    provider: str
    label: str  # "Anthropic", "OpenAI", "Google Gemini"
    article: str  # "an" / "a": "an OpenAI key"
    prefix: str  # what every key starts with, shown in messages and masks
    min_length: int
    max_length: int
    where: str  # where the person finds the key
    console: str  # the same, short: "the Console"
    pattern: str  # the key, as a regular expression (for redaction)

    def masked(self, hint: str) -> str:
        """The stored key as people see it: the provider's prefix and the last four."""
        return f"{self.prefix}…{hint}"


KEY_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")

SHAPES: dict[str, KeyShape] = {
    shape.provider: shape
    for shape in (
        KeyShape(
            provider="anthropic",
            label="Anthropic",
            article="an",
            prefix="sk-ant-",
            min_length=24,
            max_length=256,
            where="the Anthropic Console (Settings → API keys)",
            console="the Console",
            pattern=r"sk-ant-[A-Za-z0-9_-]{4,}",
        ),
        KeyShape(
            provider="openai",
            label="OpenAI",
            article="an",
            prefix="sk-",
            min_length=40,
            max_length=256,
            where="the OpenAI Platform (Dashboard → API keys)",
            console="the OpenAI Platform",
            # Not after a key character: "disk-usage-…" holds no OpenAI key.
            pattern=r"(?<![A-Za-z0-9_-])sk-(?!ant-)[A-Za-z0-9_-]{20,}",
        ),
        KeyShape(
            provider="gemini",
            label="Google Gemini",
            article="a",
            prefix="AIza",
            min_length=39,
            max_length=39,
            where="Google AI Studio (Get API key)",
            console="Google AI Studio",
            pattern=r"AIza[A-Za-z0-9_-]{35}",
        ),
    )
}

# Anything shaped like a key of any provider.
KEY_PATTERN = re.compile("|".join(shape.pattern for shape in SHAPES.values()))
_REDACTED = {"sk-ant-": "sk-ant-[redacted]", "sk-": "sk-[redacted]", "AIza": "AIza[redacted]"}


def shape_for(provider: str) -> KeyShape:
    """Return a provider's key shape."""
    try:
        return SHAPES[provider]
    except KeyError:
        raise ValueError(f"No key shape for provider '{provider}'.") from None


def redact(text: str) -> str:
    """Replace every key in ``text``, keeping its provider's prefix so a reader can tell which
    provider's key was there."""

    def replacement(match: re.Match) -> str:
        found = match.group(0)
        for prefix, redacted in _REDACTED.items():
            if found.startswith(prefix):
                return redacted
        return "[redacted]"  # pragma: no cover - every pattern starts with a prefix above

    return KEY_PATTERN.sub(replacement, text)


def other_provider(value: str, provider: str) -> KeyShape | None:
    """Return the shape of another provider whose prefix ``value`` starts with more
    specifically than with ``provider``'s (an ``sk-ant-`` key given as OpenAI's), or None."""
    own = shape_for(provider).prefix
    mine = len(own) if value.startswith(own) else 0
    for shape in SHAPES.values():
        if (
            shape.provider != provider
            and value.startswith(shape.prefix)
            and len(shape.prefix) > mine
        ):
            return shape
    return None
