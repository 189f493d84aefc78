"""The DEBUG error page and the admins' error e-mail mask infrastructure passwords and keys,
in settings, in the request's environment and in the exception's own text."""

import pytest
from django.core import mail
from django.test import Client

from llm_keys.crypto import KeyRing
from tests.conftest import SENTINEL_KEY

URL = "/w/acme/settings/llm-key/"
ENVIRON = {
    "DATABASE_URL": "postgres://byok:db-pass-1234@db.internal:5432/byok",
    "CELERY_BROKER_URL": "redis://:broker-pass-1234@redis.internal:6379/0",
    "EMAIL_URL": "smtp+tls://mailer:mail-pass-1234@smtp.internal:587",
}
PASSWORDS = ("db-pass-1234", "broker-pass-1234", "mail-pass-1234")


@pytest.fixture
def failing_save(monkeypatch, settings):
    settings.CELERY_BROKER_URL = ENVIRON["CELERY_BROKER_URL"]
    settings.LLM_KEY_CHECK_RATE_LIMIT_URL = ENVIRON["CELERY_BROKER_URL"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    def broken_encrypt(self, plaintext, associated_data):
        raise RuntimeError(f"disk on fire while sealing {plaintext}")

    monkeypatch.setattr(KeyRing, "encrypt", broken_encrypt)


def _post(admin_user):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    return client.post(URL, {"provider": "anthropic", "api_key": SENTINEL_KEY}, **ENVIRON)


@pytest.mark.django_db
def test_the_debug_page_masks_passwords_and_keys(admin_user, failing_save, settings):
    settings.DEBUG = True
    response = _post(admin_user)
    assert response.status_code == 500
    page = response.content.decode()
    assert "disk on fire while sealing sk-ant-[redacted]" in page
    assert "redis://:********@redis.internal:6379/0" in page
    assert "postgres://byok:********@db.internal:5432/byok" in page
    for secret in (*PASSWORDS, SENTINEL_KEY):
        assert secret not in page


@pytest.mark.django_db
def test_the_admins_error_email_masks_passwords_and_keys(admin_user, failing_save, settings):
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    mail.outbox.clear()
    assert _post(admin_user).status_code == 500
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    text = message.subject + message.body + "".join(str(a[1]) for a in message.alternatives)
    assert "smtp+tls://mailer:********@smtp.internal:587" in text
    for secret in (*PASSWORDS, SENTINEL_KEY):
        assert secret not in text
