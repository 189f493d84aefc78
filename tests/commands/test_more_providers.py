"""The operator commands with ``--provider openai|gemini`` (SPEC §11, §18)."""

import pytest

from llm_keys.models import KeyStatus, LLMKey
from llm_keys.services import Actor, llm_key_set
from tests.factories import fake_gemini_key, fake_key, fake_openai_key


@pytest.mark.parametrize(
    ("provider", "make", "masked"),
    [("openai", fake_openai_key, "sk-…"), ("gemini", fake_gemini_key, "AIza…")],
)
def test_set_llm_key_stores_and_verifies_each_providers_key(
    run_command, workspace, provider, make, masked
):
    raw = make()
    outcome = run_command("set_llm_key", "acme", "--provider", provider, stdin=raw + "\n")
    assert outcome.error is None
    assert f"Saved the {provider} key {masked}{raw[-4:]}" in outcome.stdout
    assert raw not in outcome.text
    llm_key = LLMKey.objects.get(provider=provider)
    assert llm_key.status == KeyStatus.VALID


def test_set_llm_key_refuses_a_key_of_another_provider_without_repeating_it(
    run_command, workspace, openai_standin
):
    raw = fake_key()
    outcome = run_command("set_llm_key", "acme", "--provider", "openai", stdin=raw)
    assert "looks like an Anthropic key, not an OpenAI key" in outcome.error
    assert raw not in outcome.text
    assert openai_standin.requests == []
    assert not LLMKey.objects.exists()


def test_set_llm_key_reports_a_revoked_gemini_key(run_command, workspace):
    raw = fake_gemini_key("revoked")
    outcome = run_command("set_llm_key", "acme", "--provider", "gemini", stdin=raw)
    assert outcome.error.startswith("The key was not saved: Rejected by Google")
    assert raw not in outcome.text


def test_a_gemini_key_on_the_command_line_is_refused_without_echo(run_command, workspace):
    raw = fake_gemini_key()
    outcome = run_command("set_llm_key", "acme", raw)
    assert "keys are only read from standard input" in outcome.error
    assert raw not in outcome.text


def test_remove_llm_key_removes_only_that_providers_key(run_command, workspace, admin_user):
    actor = Actor(user=admin_user)
    llm_key_set(workspace=workspace, provider="openai", raw_key=fake_openai_key(), actor=actor)
    llm_key_set(workspace=workspace, provider="gemini", raw_key=fake_gemini_key(), actor=actor)
    outcome = run_command("remove_llm_key", "acme", "--provider", "gemini")
    assert "Removed the gemini key of workspace 'acme'" in outcome.stdout
    assert list(LLMKey.objects.values_list("provider", flat=True)) == ["openai"]


def test_check_llm_keys_checks_one_provider_and_fails_on_its_invalid_key(
    run_command, workspace, admin_user, openai_standin, gemini_standin, standin
):
    actor = Actor(user=admin_user)
    gemini = fake_gemini_key()
    llm_key_set(workspace=workspace, provider="anthropic", raw_key=fake_key(), actor=actor)
    llm_key_set(workspace=workspace, provider="openai", raw_key=fake_openai_key(), actor=actor)
    llm_key_set(workspace=workspace, provider="gemini", raw_key=gemini, actor=actor)
    gemini_standin.set_behavior(gemini, "revoked")
    for server in (standin, openai_standin, gemini_standin):
        server.state.requests.clear()

    outcome = run_command("check_llm_keys", "--provider", "openai")
    assert outcome.error is None
    assert "1 keys checked; none is invalid." in outcome.stdout
    assert len(openai_standin.requests) == 1
    assert gemini_standin.requests == [] and standin.requests == []

    outcome = run_command("check_llm_keys", "acme")
    assert outcome.error == "1 of 3 keys failed: acme (invalid)."
    assert f"AIza…{gemini[-4:]}" in outcome.stdout
    assert "valid → invalid" in outcome.stdout
    assert gemini not in outcome.text


def test_check_llm_keys_refuses_an_unknown_provider(run_command, workspace):
    outcome = run_command("check_llm_keys", "--provider", "mistral")
    assert (
        outcome.error == "Unknown provider 'mistral'. Known providers: anthropic, openai, gemini."
    )
