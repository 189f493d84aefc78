"""The LLM Key page with a card per provider (SPEC §4, §18): each badge carries
``data-key-status`` and ``data-provider``; remove and check POSTs take a ``provider``."""

import re

import pytest

from llm_keys.models import KeyEvent, KeyStatus, LLMKey
from llm_keys.services import Actor, llm_key_set
from tests.factories import fake_gemini_key, fake_key, fake_openai_key

URL = "/w/acme/settings/llm-key/"
REMOVE_URL = URL + "remove/"
CHECK_URL = URL + "check/"

pytestmark = pytest.mark.django_db


def badges(body: str) -> dict[str, str]:
    """provider → status, from the page's status badges."""
    found = re.findall(r'data-key-status="(\w+)" data-provider="(\w+)"', body)
    return {provider: status for status, provider in found}


@pytest.fixture
def three_keys(workspace, admin_user):
    actor = Actor(user=admin_user)
    raws = {"anthropic": fake_key(), "openai": fake_openai_key(), "gemini": fake_gemini_key()}
    for provider, raw in raws.items():
        llm_key_set(workspace=workspace, provider=provider, raw_key=raw, actor=actor)
    return raws


@pytest.mark.parametrize("url", [REMOVE_URL, CHECK_URL])
def test_outsiders_and_members_cannot_touch_another_providers_key(
    outsider_client, member_client, three_keys, openai_standin, url
):
    openai_standin.state.requests.clear()
    assert outsider_client.post(url, {"provider": "openai"}).status_code == 404
    assert member_client.post(url, {"provider": "openai"}).status_code == 403
    assert LLMKey.objects.count() == 3
    assert openai_standin.requests == []


def test_one_card_per_provider(admin_client, workspace, admin_user):
    raw = fake_openai_key()
    llm_key_set(workspace=workspace, provider="openai", raw_key=raw, actor=Actor(user=admin_user))
    body = admin_client.get(URL).content.decode()
    assert badges(body) == {"openai": "valid"}
    assert f"sk-…{raw[-4:]}" in body
    for provider in ("anthropic", "gemini"):
        assert f'data-section="no-key" data-provider="{provider}"' in body
    assert raw not in body


def test_saving_each_providers_key_on_the_page(admin_client, openai_standin, gemini_standin):
    openai_raw, gemini_raw = fake_openai_key(), fake_gemini_key()
    response = admin_client.post(URL, {"provider": "openai", "api_key": openai_raw}, follow=True)
    assert "Your OpenAI key sk-…" in response.content.decode()
    response = admin_client.post(URL, {"provider": "gemini", "api_key": gemini_raw}, follow=True)
    body = response.content.decode()
    assert "Your Google Gemini key AIza…" in body
    assert badges(body) == {"openai": "valid", "gemini": "valid"}
    assert openai_standin.keys_seen() == [openai_raw]
    assert gemini_standin.keys_seen() == [gemini_raw]
    assert openai_raw not in body and gemini_raw not in body


def test_a_key_of_the_wrong_provider_is_refused_without_a_call(admin_client, openai_standin):
    response = admin_client.post(URL, {"provider": "openai", "api_key": fake_key()})
    assert response.status_code == 400
    assert "looks like an Anthropic key, not an OpenAI key" in response.content.decode()
    assert openai_standin.requests == []
    assert not LLMKey.objects.exists()


def test_check_now_checks_only_the_posted_provider(
    admin_client, three_keys, gemini_standin, openai_standin, standin
):
    gemini_standin.set_behavior(three_keys["gemini"], "revoked")
    for server in (standin, openai_standin, gemini_standin):
        server.state.requests.clear()
    response = admin_client.post(CHECK_URL, {"provider": "gemini"}, follow=True)
    body = response.content.decode()
    assert "Rejected by Google" in body
    assert "Google Gemini requests are stopped" in body
    assert badges(body) == {"anthropic": "valid", "openai": "valid", "gemini": "invalid"}
    assert len(gemini_standin.requests) == 1
    assert standin.requests == [] and openai_standin.requests == []


def test_check_without_a_provider_field_checks_anthropic_as_before(
    admin_client, three_keys, standin, gemini_standin
):
    standin.state.requests.clear()
    gemini_standin.state.requests.clear()
    response = admin_client.post(CHECK_URL, follow=True)
    assert "Anthropic accepted the key" in response.content.decode()
    assert len(standin.requests) == 1
    assert gemini_standin.requests == []


def test_remove_removes_only_the_posted_provider(admin_client, three_keys):
    response = admin_client.post(REMOVE_URL, {"provider": "openai"}, follow=True)
    body = response.content.decode()
    assert "The OpenAI key is removed." in body
    assert badges(body) == {"anthropic": "valid", "gemini": "valid"}
    assert sorted(LLMKey.objects.values_list("provider", flat=True)) == ["anthropic", "gemini"]
    event = KeyEvent.objects.filter(action=KeyEvent.Action.REMOVED).get()
    assert event.provider == "openai"


@pytest.mark.parametrize("url", [REMOVE_URL, CHECK_URL])
def test_an_unknown_provider_changes_nothing(admin_client, three_keys, url):
    response = admin_client.post(url, {"provider": "mistral"}, follow=True)
    assert "That provider is not supported" in response.content.decode()
    assert LLMKey.objects.count() == 3
    assert set(LLMKey.objects.values_list("status", flat=True)) == {KeyStatus.VALID}


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ("anthropic", "Enter your Anthropic API key."),
        ("openai", "Enter your OpenAI API key."),
        ("gemini", "Enter your Google Gemini API key."),
    ],
)
def test_an_empty_key_asks_for_the_chosen_providers_key(admin_client, provider, message):
    response = admin_client.post(URL, {"provider": provider, "api_key": "  "})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not LLMKey.objects.exists()


def test_the_form_says_where_each_providers_key_is_made(admin_client):
    body = admin_client.get(URL).content.decode()
    for where in ("Anthropic Console", "OpenAI Platform", "Google AI Studio"):
        assert where in body
    for provider, label in (("openai", "OpenAI"), ("gemini", "Google Gemini")):
        assert f'<option value="{provider}">{label}</option>' in body


def test_recent_changes_name_the_provider(admin_client, three_keys):
    body = admin_client.get(URL).content.decode()
    for provider, label in (("openai", "OpenAI"), ("gemini", "Google Gemini")):
        assert f'<span data-event-provider="{provider}">({label})</span>' in body
