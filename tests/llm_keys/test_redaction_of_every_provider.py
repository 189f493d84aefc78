"""Redaction knows every provider's key shape (SPEC §5, §18): OpenAI and Gemini keys are
redacted in log records, the DEBUG error page, the admins' error e-mail and echoed input
as Anthropic keys are, and text that merely contains ``sk-`` is left alone."""

import logging

import pytest
from django.core import mail
from django.test import Client

from llm_keys.crypto import KeyRing
from llm_keys.logging import RedactKeysFilter
from tests.conftest import GEMINI_SENTINEL_KEY, OPENAI_SENTINEL_KEY, SENTINEL_KEY
from workspaces.echo import NOT_REPEATED, shown

SENTINELS = {
    "anthropic": (SENTINEL_KEY, "sk-ant-[redacted]"),
    "openai": (OPENAI_SENTINEL_KEY, "sk-[redacted]"),
    "gemini": (GEMINI_SENTINEL_KEY, "AIza[redacted]"),
}


def _filtered(message: str, *args) -> logging.LogRecord:
    record = logging.LogRecord("llm_keys.test", logging.WARNING, __file__, 1, message, args, None)
    RedactKeysFilter().filter(record)
    return record


@pytest.mark.parametrize("provider", SENTINELS)
def test_a_log_record_loses_the_key_and_keeps_its_providers_prefix(provider):
    key, redacted = SENTINELS[provider]
    record = _filtered("calling with %s then %s", key, f"Bearer {key}")
    assert record.getMessage() == f"calling with {redacted} then Bearer {redacted}"


@pytest.mark.parametrize("provider", SENTINELS)
def test_an_exception_text_loses_the_key(provider):
    key, redacted = SENTINELS[provider]
    try:
        raise RuntimeError(f"boom {key}")
    except RuntimeError:
        record = logging.LogRecord(
            "llm_keys.test", logging.ERROR, __file__, 1, "failed", None, logging.sys.exc_info()
        )
    RedactKeysFilter().filter(record)
    assert f"RuntimeError: boom {redacted}" in record.exc_text
    assert key not in record.exc_text


@pytest.mark.parametrize(
    "text",
    [
        "disk-usage-monitoring-alert-threshold reached",
        "task-scheduler-heartbeat-interval-seconds",
        "AIza is a prefix; AIzaShort is not a key",
    ],
)
def test_text_that_only_looks_close_is_kept(text):
    assert _filtered(text).getMessage() == text


@pytest.mark.parametrize("provider", SENTINELS)
def test_echoed_input_hides_every_providers_key(provider):
    key, _ = SENTINELS[provider]
    assert shown(key) == NOT_REPEATED
    assert shown("acme-workspace") == "'acme-workspace'"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("provider", "key", "redacted"),
    [
        ("openai", OPENAI_SENTINEL_KEY, "sk-[redacted]"),
        ("gemini", GEMINI_SENTINEL_KEY, "AIza[redacted]"),
    ],
)
def test_the_debug_page_and_the_error_email_redact_the_key(
    admin_user, monkeypatch, settings, provider, key, redacted
):
    def broken_encrypt(self, plaintext, associated_data):
        raise RuntimeError(f"disk on fire while sealing {plaintext}")

    monkeypatch.setattr(KeyRing, "encrypt", broken_encrypt)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)

    settings.DEBUG = True
    page = client.post("/w/acme/settings/llm-key/", {"provider": provider, "api_key": key})
    assert page.status_code == 500
    assert f"disk on fire while sealing {redacted}" in page.content.decode()
    assert key not in page.content.decode()

    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    mail.outbox.clear()
    client.post("/w/acme/settings/llm-key/", {"provider": provider, "api_key": key})
    message = mail.outbox[0]
    text = message.subject + message.body + "".join(str(a[1]) for a in message.alternatives)
    assert redacted in text
    assert key not in text
