"""Helpers that prove a secret never escapes: into logs, responses, e-mails or the database."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import apps
from django.core import mail
from django.db import connection

WATCHED_LOGGERS = (
    "",
    "django",
    "django.request",
    "django.db.backends",
    "anthropic",
    "openai",
    "google_genai",
    "httpx",
    "httpx2",
    "httpcore",
    "celery",
    "llm_keys",
    "ai_gateway",
    "credits",
    "workspaces",
)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def capture_all_logs() -> Iterator[list[logging.LogRecord]]:
    """Capture every log record at DEBUG from every logger, including third-party ones."""
    handler = _ListHandler()
    saved = {}
    for name in WATCHED_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, logger.propagate, logger.disabled)
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for name, (level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


def record_text(record: logging.LogRecord) -> str:
    """Everything a formatter could write for a record: message, args, exception, stack."""
    parts = [str(record.msg), repr(record.args)]
    with contextlib.suppress(Exception):
        parts.append(record.getMessage())
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    parts.append(repr(record.__dict__))
    return "\n".join(parts)


def database_text() -> str:
    """Every row of every table of this project's models, as text (binary columns decoded
    as latin-1 and as hex), plus the raw SQLite database image when on SQLite."""
    chunks = []
    with connection.cursor() as cursor:
        for model in apps.get_models(include_auto_created=True):
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT * FROM {table}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        raw = bytes(value)
                        chunks += [raw.decode("latin-1"), raw.hex()]
                    else:
                        chunks.append(str(value))
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        image = connection.connection.serialize()
        chunks.append(image.decode("latin-1"))
    return "\n".join(chunks)


def assert_secret_absent(secret: str, *, records=(), texts=(), check_mail=True, check_db=True):
    """Fail if the secret appears in any log record, text, e-mail or database row."""
    for record in records:
        assert secret not in record_text(record), f"secret in log record {record.name}"
    for index, text in enumerate(texts):
        assert secret not in text, f"secret in captured text #{index}"
    if check_mail:
        for message in mail.outbox:
            assert secret not in message.message().as_string(), "secret in an e-mail"
    if check_db:
        assert secret not in database_text(), "secret in the database"
