"""The sentinel key must never escape: not into a log record (any level, any logger),
a response, an e-mail, an error report or the database's plaintext."""

import pytest
from django.core import mail
from django.test import Client

from llm_keys.crypto import KeyRing
from llm_keys.models import KeyEvent, LLMKey
from tests.conftest import GEMINI_SENTINEL_KEY, OPENAI_SENTINEL_KEY, SENTINEL_KEY
from tests.leaks import assert_secret_absent, capture_all_logs, database_text

URL = "/w/acme/settings/llm-key/"


@pytest.mark.django_db
def test_the_sentinel_key_never_escapes_the_key_lifecycle(
    admin_user, standin, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    responses = []

    with capture_all_logs() as records:
        # Save: the provider sees it, the page shows only the mask.
        responses.append(
            client.post(URL, {"provider": "anthropic", "api_key": f" {SENTINEL_KEY} "})
        )
        responses.append(client.get(URL))
        assert standin.keys_seen() == [SENTINEL_KEY]
        # Check: valid, then revoked at the provider → invalid (e-mail to admins).
        responses.append(client.post(URL + "check/", follow=True))
        standin.set_behavior(SENTINEL_KEY, "revoked")
        with django_capture_on_commit_callbacks(execute=True):
            responses.append(client.post(URL + "check/", follow=True))
        assert LLMKey.objects.get().status == "invalid"
        # Outage during a check: the error is recorded, never the key.
        standin.set_behavior(SENTINEL_KEY, "overloaded")
        responses.append(client.post(URL + "check/", follow=True))
        # Save again, refused by the provider.
        responses.append(client.post(URL, {"provider": "anthropic", "api_key": SENTINEL_KEY}))
        # A malformed variant is echoed nowhere.
        responses.append(
            client.post(URL, {"provider": "anthropic", "api_key": SENTINEL_KEY + " !"})
        )
        # An unexpected error while the key is in hand: a 500 with DEBUG=False, an error log
        # with the traceback, and an error e-mail to ADMINS.
        standin.set_behavior(SENTINEL_KEY, "ok")

        def broken_encrypt(self, plaintext, associated_data):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(KeyRing, "encrypt", broken_encrypt)
        error_response = client.post(URL, {"provider": "anthropic", "api_key": SENTINEL_KEY})
        assert error_response.status_code == 500
        responses.append(error_response)
        monkeypatch.undo()
        # Remove.
        responses.append(client.post(URL + "remove/", follow=True))
        responses.append(client.get(URL))
        responses.append(client.get("/w/acme/"))

    assert any(r.name == "django.request" and r.exc_info for r in records), "the 500 was logged"
    assert any("Internal Server Error" in m.subject or "ERROR" in m.subject for m in mail.outbox)
    assert any("invalid" in m.subject for m in mail.outbox), [m.subject for m in mail.outbox]
    assert any(r.name.startswith(("httpx", "anthropic")) for r in records), "SDK logs were captured"
    assert KeyEvent.objects.count() >= 6
    texts = [r.content.decode() for r in responses]
    assert_secret_absent(SENTINEL_KEY, records=records, texts=texts)
    # The part that makes it a key, without its common prefix, is nowhere either.
    assert_secret_absent(SENTINEL_KEY[len("sk-ant-api03-") :], records=records, texts=texts)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("provider", "sentinel", "prefix", "loggers"),
    [
        ("openai", OPENAI_SENTINEL_KEY, "sk-proj-", ("openai", "httpx")),
        ("gemini", GEMINI_SENTINEL_KEY, "AIza", ("google_genai", "httpx")),
    ],
)
def test_each_providers_sentinel_key_never_escapes_the_key_lifecycle(
    request,
    admin_user,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
    provider,
    sentinel,
    prefix,
    loggers,
):
    server = request.getfixturevalue(f"{provider}_standin")
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    responses = []
    chosen = {"provider": provider}

    with capture_all_logs() as records:
        responses.append(client.post(URL, {**chosen, "api_key": f" {sentinel} "}))
        responses.append(client.get(URL))
        assert server.keys_seen() == [sentinel]
        responses.append(client.post(URL + "check/", chosen, follow=True))
        server.set_behavior(sentinel, "revoked")
        with django_capture_on_commit_callbacks(execute=True):
            responses.append(client.post(URL + "check/", chosen, follow=True))
        assert LLMKey.objects.get().status == "invalid"
        server.set_behavior(sentinel, "overloaded")
        responses.append(client.post(URL + "check/", chosen, follow=True))
        server.set_behavior(sentinel, "revoked")
        responses.append(client.post(URL, {**chosen, "api_key": sentinel}))
        responses.append(client.post(URL, {**chosen, "api_key": sentinel + " !"}))
        # Given as another provider's key: refused by shape, not repeated.
        other = "gemini" if provider == "openai" else "openai"
        responses.append(client.post(URL, {"provider": other, "api_key": sentinel}))
        server.set_behavior(sentinel, "ok")

        def broken_encrypt(self, plaintext, associated_data):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(KeyRing, "encrypt", broken_encrypt)
        error_response = client.post(URL, {**chosen, "api_key": sentinel})
        assert error_response.status_code == 500
        responses.append(error_response)
        monkeypatch.undo()
        responses.append(client.post(URL + "remove/", chosen, follow=True))
        responses.append(client.get(URL))
        responses.append(client.get("/w/acme/"))

    assert any(r.name == "django.request" and r.exc_info for r in records), "the 500 was logged"
    assert any("invalid" in m.subject for m in mail.outbox), [m.subject for m in mail.outbox]
    assert any(r.name.startswith(loggers) for r in records), "SDK logs were captured"
    texts = [r.content.decode() for r in responses]
    assert_secret_absent(sentinel, records=records, texts=texts)
    assert_secret_absent(sentinel[len(prefix) :], records=records, texts=texts)


@pytest.mark.django_db
def test_a_stored_key_is_only_ciphertext_in_the_database(workspace, admin_user, standin):
    client = Client()
    client.force_login(admin_user)
    client.post(URL, {"provider": "anthropic", "api_key": SENTINEL_KEY})
    assert LLMKey.objects.count() == 1
    assert SENTINEL_KEY not in database_text()
