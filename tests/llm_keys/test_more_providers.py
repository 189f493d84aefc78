"""Keys for OpenAI and Google Gemini beside Anthropic's (SPEC §18): one per workspace and
provider, each shape-checked without a network call, verified with its own provider by the
same §6 rules, masked in its own shape, and named in the invalid-key e-mail."""

import pytest
from django.core import mail
from django.db import IntegrityError, transaction

from llm_keys import tasks
from llm_keys.models import KeyEvent, KeyStatus, LLMKey, Provider
from llm_keys.services import (
    Actor,
    KeyFormatError,
    KeyNotSavedError,
    llm_key_remove,
    llm_key_set,
    validate_key_format,
)
from tests.factories import fake_gemini_key, fake_key, fake_openai_key

FAKE = {"anthropic": fake_key, "openai": fake_openai_key, "gemini": fake_gemini_key}
MASK = {"anthropic": "sk-ant-…", "openai": "sk-…", "gemini": "AIza…"}
LABEL = {"anthropic": "Anthropic", "openai": "OpenAI", "gemini": "Google Gemini"}


@pytest.fixture
def actor(admin_user):
    return Actor(user=admin_user)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_a_key_is_verified_with_its_own_provider_and_masked_in_its_shape(
    workspace, actor, standin, openai_standin, gemini_standin, provider
):
    raw = FAKE[provider]()
    llm_key = llm_key_set(workspace=workspace, provider=provider, raw_key=raw, actor=actor)
    assert llm_key.status == KeyStatus.VALID
    assert llm_key.masked == MASK[provider] + raw[-4:]
    assert str(llm_key) == f"{LABEL[provider]} key {llm_key.masked} (valid)"
    own = {"openai": openai_standin, "gemini": gemini_standin}[provider]
    assert own.keys_seen() == [raw]
    assert standin.requests == []  # Anthropic was not asked
    event = KeyEvent.objects.get(workspace=workspace)
    assert (event.provider, event.detail) == (provider, f"verified with {LABEL[provider]}")


def test_one_key_per_provider_side_by_side(workspace, actor):
    for provider in ("anthropic", "openai", "gemini"):
        llm_key_set(workspace=workspace, provider=provider, raw_key=FAKE[provider](), actor=actor)
    assert sorted(LLMKey.objects.values_list("provider", flat=True)) == [
        "anthropic",
        "gemini",
        "openai",
    ]
    # Removing one provider's key leaves the others.
    assert llm_key_remove(workspace=workspace, provider="openai", actor=actor)
    assert sorted(LLMKey.objects.values_list("provider", flat=True)) == ["anthropic", "gemini"]


@pytest.mark.parametrize(
    ("provider", "marker", "reason"),
    [
        ("openai", "revoked", "Rejected by OpenAI: the key was revoked"),
        ("openai", "forbidden", "Rejected by OpenAI: the key lacks permission"),
        ("gemini", "revoked", "Rejected by Google: the Gemini key is not valid"),
        ("gemini", "forbidden", "Rejected by Google: the key's project may not use"),
    ],
)
def test_a_key_the_provider_refuses_is_not_saved(workspace, actor, provider, marker, reason):
    with pytest.raises(KeyNotSavedError, match=reason):
        llm_key_set(
            workspace=workspace, provider=provider, raw_key=FAKE[provider](marker), actor=actor
        )
    assert not LLMKey.objects.exists()
    assert KeyEvent.objects.get().action == KeyEvent.Action.REJECTED


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_an_unreachable_provider_saves_the_key_unverified(workspace, actor, provider):
    llm_key = llm_key_set(
        workspace=workspace, provider=provider, raw_key=FAKE[provider]("overloaded"), actor=actor
    )
    assert llm_key.status == KeyStatus.UNVERIFIED
    assert llm_key.status_reason == (
        f"Not verified yet: {LABEL[provider]} could not be reached. "
        "It will be checked again automatically within a few minutes."
    )


@pytest.mark.parametrize(
    ("provider", "value", "message"),
    [
        ("openai", "", "Enter your OpenAI API key."),
        ("openai", "pk-live-0123456789abcdefghij0123456789abcdefghij", "OpenAI keys start with"),
        ("openai", "sk-proj-abc", "too short to be an OpenAI API key (11 characters)"),
        ("openai", "sk-proj-" + "a" * 20 + " " + "b" * 20, "characters an OpenAI key never"),
        ("openai", fake_key(), "looks like an Anthropic key, not an OpenAI key"),
        ("openai", fake_gemini_key(), "looks like a Google Gemini key, not an OpenAI key"),
        ("gemini", "", "Enter your Google Gemini API key."),
        ("gemini", "AIza" + "x" * 30, "Google Gemini keys have 39 characters"),
        ("gemini", "AIza" + "x" * 40, "too long to be a Google Gemini API key (44 characters)"),
        ("gemini", "AIza" + "x" * 34 + "!", "characters a Google Gemini key never has"),
        ("gemini", fake_openai_key(), "looks like an OpenAI key, not a Google Gemini key"),
        ("gemini", "ya29.a0AfH6SMB-not-an-api-key", "Google Gemini keys start with 'AIza'"),
        ("anthropic", fake_openai_key(), "looks like an OpenAI key, not an Anthropic key"),
    ],
)
def test_shape_checks_say_what_is_wrong_and_never_repeat_the_value(provider, value, message):
    with pytest.raises(KeyFormatError) as caught:
        validate_key_format(value, provider)
    assert message in str(caught.value)
    if value.strip():
        assert value.strip() not in str(caught.value)


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_well_formed_keys_pass_the_shape_check_stripped(provider):
    raw = FAKE[provider]()
    assert validate_key_format(f"  {raw}\n", provider) == raw


def test_the_database_refuses_an_unknown_provider(workspace):
    with pytest.raises(IntegrityError), transaction.atomic():
        LLMKey.objects.create(
            workspace=workspace,
            provider="mistral",
            ciphertext=b"x",
            encryption_key_id="k1",
            hint="abcd",
        )


def test_a_revoked_gemini_key_found_by_the_periodic_check_emails_once_naming_google(
    settings, tmp_path, workspace, admin_user, gemini_standin, django_capture_on_commit_callbacks
):
    settings.LLM_KEY_CHECK_RATE_LIMIT_URL = f"file://{tmp_path / 'ratelimit'}"
    settings.LLM_KEY_CHECK_RATE_PER_MINUTE = 6_000_000
    raw = fake_gemini_key()
    llm_key = llm_key_set(
        workspace=workspace, provider=Provider.GEMINI, raw_key=raw, actor=Actor(user=admin_user)
    )
    gemini_standin.set_behavior(raw, "revoked")
    mail.outbox.clear()
    for _ in range(3):  # three sweeps find it revoked
        with django_capture_on_commit_callbacks(execute=True):
            tasks.llm_key_check_task.apply(args=(llm_key.pk,)).get()
    llm_key.refresh_from_db()
    assert llm_key.status == KeyStatus.INVALID
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "Your Google Gemini API key is invalid" in message.subject
    assert f"The Google Gemini API key AIza…{raw[-4:]}" in message.body
    assert "Rejected by Google" in message.body
    assert raw not in message.body
