"""Repeat a user's input in an error message only when it cannot be a secret.

An operator who pastes a provider key into the wrong argument or field must not see it
printed back (into a terminal's scrollback, a CI log, a screenshot): the message says what
is wrong without repeating it. The pattern (every provider's key shape) is the one the log
redaction uses.
"""

from __future__ import annotations

from providers.keys import KEY_PATTERN

NOT_REPEATED = "a value that looks like an API key (not repeated here)"


def looks_like_key(value: object) -> bool:
    """True when the text holds something shaped like a provider key."""
    return isinstance(value, str) and bool(KEY_PATTERN.search(value))


def shown(value: object) -> str:
    """Return ``'value'`` for an error message, or a placeholder when it looks like a key."""
    text = str(value)
    if looks_like_key(text):
        return NOT_REPEATED
    return f"'{text}'"
