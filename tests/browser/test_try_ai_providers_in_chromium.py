"""Try AI with OpenAI and Gemini models in Chromium, through the served ASGI app against the
stand-ins: the picker groups the providers, the answer streams, Stop works and the page says
who paid and what was charged (decision 150)."""

import pytest

from ai_gateway.models import AIRequest, Outcome
from credits.selectors import credits_balance
from credits.services import credits_grant
from llm_keys.models import KeyStatus, LLMKey, Provider
from llm_keys.services import Actor, llm_key_set
from tests.browser.conftest import OUTPUT, log_in, needs_chromium, wait_for_row
from tests.factories import MembershipFactory, WorkspaceFactory, fake_gemini_key, fake_openai_key

pytestmark = [pytest.mark.browser, needs_chromium]

PROMPT = "one two three four five six seven eight nine ten eleven twelve"


@pytest.fixture
def acme(db, settings):
    settings.PLATFORM_OPENAI_API_KEY = fake_openai_key()
    settings.PLATFORM_GEMINI_API_KEY = fake_gemini_key()
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    admin = MembershipFactory(
        workspace=workspace, role="admin", user__email="admin@example.com"
    ).user
    credits_grant(workspace=workspace, amount=100_000, reason="test")
    return workspace, admin


@pytest.mark.django_db(transaction=True)
def test_an_openai_model_answers_in_try_ai(new_page, site_url, openai_standin, acme):
    workspace, _ = acme
    openai_standin.state.stream_word_delay = 0.05
    page = new_page()
    log_in(page, site_url, "admin@example.com", path="/w/acme/ai/")
    labels = page.locator("select[name=model] optgroup").evaluate_all(
        "groups => groups.map(g => g.label)"
    )
    assert labels == ["Anthropic", "OpenAI", "Google Gemini"]

    page.select_option("select[name=model]", "gpt-5-mini")
    page.wait_for_selector("[data-next-credential-source=platform][data-provider=openai]")
    assert "platform's OpenAI account" in page.locator("#who-pays").inner_text()
    page.fill("textarea[name=prompt]", PROMPT)
    page.click("[data-send]")
    page.wait_for_selector("[data-live-credits-charged]:not([data-live-credits-charged=''])")

    assert page.locator("#stream-status").inner_text() == "Answer complete."
    assert page.locator("#live-answer-text").inner_text().startswith("This is the stand-in's")
    assert page.locator("[data-live-credential-source=platform]").is_visible()
    row = AIRequest.objects.get()
    assert (row.provider, row.model, row.outcome) == ("openai", "gpt-5-mini", Outcome.OK)
    charged = page.locator("#live-credits").get_attribute("data-live-credits-charged")
    assert int(charged) == row.credits_charged > 0
    tokens = page.locator("#live-tokens").inner_text()
    assert tokens == f"{row.input_tokens} in, {row.output_tokens} out"
    # The balance on the page follows the charge without a reload.
    balance = credits_balance(workspace=workspace)
    page.wait_for_selector(f"[data-credits-balance='{balance}']")
    page.screenshot(path=str(OUTPUT / "try-ai-openai.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_stop_on_a_gemini_answer_shows_what_was_charged(new_page, site_url, gemini_standin, acme):
    workspace, _ = acme
    # Gemini may think unseen, so the gateway reads a stopped answer on to its final usage
    # (decision 103): a short one, so the page's wait for the charge covers it.
    gemini_standin.state.answer_words = 60
    gemini_standin.state.stream_word_delay = 0.3
    page = new_page()
    log_in(page, site_url, "admin@example.com", path="/w/acme/ai/")
    page.select_option("select[name=model]", "gemini-2.5-flash")
    page.fill("textarea[name=prompt]", PROMPT)
    page.click("[data-send]")
    page.wait_for_function(
        "document.getElementById('live-answer-text').textContent.split(' ').length >= 8"
    )
    page.click("[data-stop]")
    page.wait_for_function("document.getElementById('stream-status').textContent === 'Stopped.'")

    row = wait_for_row(provider=Provider.GEMINI)
    page.wait_for_selector(f"[data-live-credits-charged='{row.credits_charged}']")
    assert "before Stop" in page.locator("#live-credits").inner_text()
    assert row.outcome == Outcome.CLIENT_DISCONNECTED and row.credits_charged > 0
    assert credits_balance(workspace=workspace) == 100_000 - row.credits_charged
    assert page.locator("[data-send]").is_enabled()


@pytest.mark.django_db(transaction=True)
def test_an_invalid_openai_key_turns_off_only_openais_models(new_page, site_url, acme):
    workspace, admin = acme
    llm_key = llm_key_set(
        workspace=workspace,
        provider=Provider.OPENAI,
        raw_key=fake_openai_key(),
        actor=Actor(user=admin),
    )
    LLMKey.objects.filter(pk=llm_key.pk).update(status=KeyStatus.INVALID)
    page = new_page()
    log_in(page, site_url, "admin@example.com", path="/w/acme/ai/")

    group = page.locator("select[name=model] optgroup").nth(1)
    assert group.get_attribute("label") == "OpenAI — off: the workspace's OpenAI key is invalid"
    assert page.locator("option[value='gpt-5-mini']").is_disabled()
    assert page.locator("option[value='gemini-2.5-flash']").is_enabled()
    assert page.locator("[data-send]").is_enabled()  # Anthropic's model is chosen
