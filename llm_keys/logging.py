"""Keep provider keys and customer prompts out of every log line, in every process.

Three layers, because each alone has a hole:

- ``RedactKeysFilter`` on the handlers rewrites a record's message and its exception text
  before any handler sees it, and drops the provider SDK's and HTTP libraries' DEBUG records:
  they carry request options and bodies (prompts, answers: customer data).
- ``RedactingFormatter`` redacts the whole formatted line, traceback and stack included: a key
  inside an exception's text, or in a frame's source line, is caught however it got there.
- ``install_redaction`` puts both on handlers that someone else configured (Celery's worker
  and beat replace the root handlers; config/celery.py calls it from their setup signals),
  and ``redacting_excepthook`` covers a traceback printed by Python itself (an uncaught
  exception in a command).
"""

from __future__ import annotations

import logging
import sys
import traceback

from providers.keys import redact
from workspaces.echo import KEY_PATTERN, looks_like_key

__all__ = ["KEY_PATTERN", "looks_like_key", "redact"]


# Their DEBUG records hold request options (the prompt), bodies and headers; INFO only says
# "HTTP Request: POST <url> 200" or "Retrying request".
NO_DEBUG_LOGGERS = (
    "anthropic",
    "openai",
    "google_genai",
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
)


def _is_quiet(name: str) -> bool:
    return any(name == quiet or name.startswith(quiet + ".") for quiet in NO_DEBUG_LOGGERS)


class RedactKeysFilter(logging.Filter):
    """Scrub anything shaped like a provider's key from a record before it is written.

    A second line of defence: no code path should log a key in the first place.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if KEY_PATTERN is None:
            # Interpreter shutdown has cleared this module's globals (a record logged by a
            # finalizer, e.g. an unclosed client session): drop it, never write it unredacted.
            return False
        if record.levelno < logging.INFO and _is_quiet(record.name):
            return False
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: keep the raw message
            message = str(record.msg)
        if KEY_PATTERN.search(message):
            record.msg = redact(message)
            record.args = None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            # Formatted now, redacted, and cached where every formatter looks for it.
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingFormatter(logging.Formatter):
    """Format as the wrapped formatter does (or as ``logging.Formatter``), then redact."""

    def __init__(self, *args, inner: logging.Formatter | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record) if self.inner is not None else super().format(record)
        return redact(text)


def install_redaction(logger: logging.Logger) -> None:
    """Put the filter and the redacting formatter on every handler of ``logger``."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactKeysFilter) for f in handler.filters):
            handler.addFilter(RedactKeysFilter())
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(inner=handler.formatter or logging.Formatter()))


def redacting_excepthook(exc_type, exc_value, exc_traceback) -> None:
    """Print an uncaught exception's traceback as Python does, with keys redacted."""
    text = "".join(traceback.format_exception(exc_type, exc_value, exc_traceback))
    sys.stderr.write(redact(text))
