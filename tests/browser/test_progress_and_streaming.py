"""What a person sees while the site waits on Anthropic: a disabled button that says so,
and an answer that grows word by word, with Stop."""

import time

import pytest

from ai_gateway.models import AIRequest, Outcome
from credits.selectors import credits_balance
from credits.services import credits_grant
from llm_keys.models import KeyStatus, LLMKey
from tests.browser.conftest import OUTPUT, PHONE, log_in, needs_chromium, wait_for_row
from tests.factories import MembershipFactory, WorkspaceFactory, fake_key

pytestmark = [pytest.mark.browser, needs_chromium]

# The stand-in echoes the first 60 characters of the prompt, one word per event.
LONG_PROMPT = "one two three four five six seven eight nine ten"
LONG_SYSTEM = "You answer briefly. " * 100  # about 500 input tokens: a charge above zero


def watch_buttons(page) -> list[str]:
    """Report every change of the page's buttons as "disabled|label" through the console: the
    page is waiting on a form submission, so it cannot be queried until the answer comes."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text))
    page.evaluate(
        """() => new MutationObserver(() => document.querySelectorAll("button").forEach((b) => {
             if (b.disabled) console.log(`disabled|${b.textContent}`);
           })).observe(document.body, {subtree: true, attributes: true, childList: true,
                                       characterData: true})"""
    )
    return seen


@pytest.fixture
def acme(db):
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    admin = MembershipFactory(
        workspace=workspace, role="admin", user__email="admin@example.com"
    ).user
    return workspace, admin


@pytest.mark.django_db(transaction=True)
def test_saving_a_key_against_a_slow_provider_shows_progress_then_the_result(
    new_page, site_url, standin, settings, acme
):
    settings.LLM_KEY_CHECK_TIMEOUT_SECONDS = 10
    standin.state.latency = 2.0
    page = new_page()
    log_in(page, site_url, "admin@example.com", path="/w/acme/settings/llm-key/")
    page.fill("input[name=api_key]", fake_key())
    seen = watch_buttons(page)
    started = time.monotonic()
    page.click("text=Save changes", no_wait_after=True)
    page.wait_for_timeout(500)

    # While Anthropic thinks (2 s here): the button is disabled and says what is happening.
    assert "disabled|Checking with the provider…" in seen, seen
    page.wait_for_selector("[data-key-status=valid]", timeout=15_000)
    assert time.monotonic() - started >= 2.0
    assert page.locator("button.primary").is_enabled()
    assert page.locator("button.primary").inner_text() == "Save changes"
    assert page.locator(".msg-success").is_visible()
    assert LLMKey.objects.get().status == KeyStatus.VALID
    page.screenshot(path=str(OUTPUT / "settings-after-slow-save.png"), full_page=True)

    # "Check now" shows the same progress.
    seen = watch_buttons(page)
    page.click("text=Check now", no_wait_after=True)
    page.wait_for_timeout(500)
    page.wait_for_selector(".msg-success", timeout=15_000)
    assert "disabled|Checking with Anthropic…" in seen, seen


@pytest.mark.django_db(transaction=True)
def test_a_save_error_is_summarised_at_the_top_and_focused(new_page, site_url, acme):
    page = new_page(viewport=PHONE)
    log_in(page, site_url, "admin@example.com", path="/w/acme/settings/llm-key/")
    page.fill("input[name=api_key]", "sk-ant-short")
    page.click("text=Save changes")
    page.wait_for_selector("[data-error-summary]")
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    # Scrolled to it: the summary is on screen, above the key card.
    assert (
        page.evaluate("document.querySelector('[data-error-summary]').getBoundingClientRect().top")
        < 200
    )
    field = page.locator("#id_api_key")
    assert field.get_attribute("aria-invalid") == "true"
    for described in field.get_attribute("aria-describedby").split():
        assert page.locator(f"#{described}").count() == 1, described


@pytest.mark.django_db(transaction=True)
def test_try_ai_streams_the_answer_as_it_is_written(new_page, site_url, standin, acme):
    workspace, _ = acme
    credits_grant(workspace=workspace, amount=100_000, reason="test")
    standin.state.stream_word_delay = 0.3
    page = new_page()
    log_in(page, site_url, "admin@example.com", path="/w/acme/ai/")
    assert page.locator("[data-next-credential-source=platform]").is_visible()
    page.fill("textarea[name=prompt]", LONG_PROMPT)
    page.click("[data-send]")

    text = page.locator("#live-answer-text")
    page.wait_for_function("document.getElementById('live-answer-text').textContent.length > 0")
    first = text.inner_text()
    assert page.locator("[data-send]").is_disabled()
    assert page.locator("[data-stop]").is_visible()
    page.wait_for_function(
        f"document.getElementById('live-answer-text').textContent.length > {len(first)}"
    )
    assert page.locator("#stream-status").inner_text() == "Answering…"  # not ended yet
    assert page.locator("#stream-status").get_attribute("data-busy") == "true"

    page.wait_for_selector("[data-live-credits-charged]:not([data-live-credits-charged=''])")
    assert page.locator("#stream-status").inner_text() == "Answer complete."
    assert page.locator("#stream-status").get_attribute("data-busy") is None  # no spinner
    assert text.inner_text() == f"Stand-in reply to: {LONG_PROMPT}"
    assert page.locator("[data-live-credential-source=platform]").is_visible()
    row = AIRequest.objects.get()
    charged = page.locator("#live-credits").get_attribute("data-live-credits-charged")
    assert int(charged) == row.credits_charged > 0
    assert page.locator("[data-send]").is_enabled()
    page.screenshot(path=str(OUTPUT / "try-ai-streamed.png"), full_page=True)


def _stop_after_three_words(page, site_url, standin, workspace) -> AIRequest:
    credits_grant(workspace=workspace, amount=100_000, reason="test")
    standin.state.stream_word_delay = 0.4
    log_in(page, site_url, "admin@example.com", path="/w/acme/ai/")
    page.fill("textarea[name=system]", LONG_SYSTEM)
    page.fill("textarea[name=prompt]", LONG_PROMPT)
    page.click("[data-send]")
    page.wait_for_function(
        "document.getElementById('live-answer-text').textContent.split(' ').length >= 3"
    )
    page.click("[data-stop]")
    page.wait_for_function("document.getElementById('stream-status').textContent === 'Stopped.'")
    # The server notices the closed connection at its next write, then records the request;
    # the page asks for that row until it has it. The test reads it once the page has it: a
    # read of the test's own while the live server writes the row meets SQLite's table lock
    # (its in-memory database is shared between threads), which the server's write or the
    # test's read would get as "database table is locked".
    page.wait_for_function(
        "document.getElementById('live-credits').dataset.liveCreditsCharged", timeout=15_000
    )
    return AIRequest.objects.get()


@pytest.mark.django_db(transaction=True)
def test_stop_ends_the_stream_and_leaves_no_hold(new_page, site_url, standin, acme):
    workspace, _ = acme
    page = new_page()
    row = _stop_after_three_words(page, site_url, standin, workspace)
    shown = page.locator("#live-answer-text").inner_text()
    assert shown.startswith("Stand-in reply")
    assert shown != f"Stand-in reply to: {LONG_PROMPT}"
    assert "before Stop" in page.locator("#live-credits").inner_text()
    assert page.locator("[data-send]").is_enabled()
    assert not page.locator("[data-stop]").is_visible()
    assert row.outcome == Outcome.CLIENT_DISCONNECTED
    assert row.stream
    assert row.input_tokens > 400
    # Nothing is kept back: the hold is gone, whatever was charged.
    assert credits_balance(workspace=workspace) == 100_000 - row.credits_charged


@pytest.mark.django_db(transaction=True)
def test_a_stopped_answer_is_charged_for_what_was_produced(new_page, site_url, standin, acme):
    workspace, _ = acme
    row = _stop_after_three_words(new_page(), site_url, standin, workspace)
    assert row.credits_charged > 0


@pytest.mark.django_db(transaction=True)
def test_send_is_disabled_with_the_reason_while_the_key_is_invalid(new_page, site_url, acme):
    from llm_keys.services import Actor, llm_key_set

    workspace, admin = acme
    llm_key = llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin))
    LLMKey.objects.filter(pk=llm_key.pk).update(status=KeyStatus.INVALID)
    page = new_page()
    log_in(page, site_url, "admin@example.com", path="/w/acme/ai/")
    send = page.locator("button.primary", has_text="Send")
    assert send.is_disabled()
    assert send.get_attribute("aria-describedby") == "send-blocked"
    assert "key is invalid" in page.locator("#send-blocked").inner_text()


@pytest.mark.django_db(transaction=True)
def test_without_javascript_the_prompt_form_still_answers(new_page, site_url, acme):
    workspace, _ = acme
    credits_grant(workspace=workspace, amount=100_000, reason="test")
    page = new_page(java_script_enabled=False)
    log_in(page, site_url, "admin@example.com", path="/w/acme/ai/")
    page.fill("textarea[name=prompt]", "Hello")
    page.click("text=Send")
    page.wait_for_selector("[data-answer-source=server]")
    assert "Stand-in reply to: Hello" in page.locator("[data-answer-source=server]").inner_text()


@pytest.mark.django_db(transaction=True)
def test_a_stopped_answer_shows_the_tokens_and_credits_charged(new_page, site_url, standin, acme):
    workspace, _ = acme
    page = new_page()
    row = _stop_after_three_words(page, site_url, standin, workspace)
    page.wait_for_selector("#live-credits[data-live-credits-charged]")
    shown = page.locator("#live-credits").get_attribute("data-live-credits-charged")
    assert int(shown) == row.credits_charged > 0
    assert page.locator("#live-tokens").inner_text() == (
        f"{row.input_tokens:,} in, {row.output_tokens:,} out"
    )
    # The balance on the page follows the charge without a reload.
    balance = page.locator("[data-credits-balance]").get_attribute("data-credits-balance")
    assert int(balance) == credits_balance(workspace=workspace) == 100_000 - row.credits_charged
    page.screenshot(path=str(OUTPUT / "try-ai-stopped.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_a_stop_before_the_first_token_is_no_error_and_recorded_as_the_users(
    new_page, site_url, standin, acme
):
    workspace, _ = acme
    credits_grant(workspace=workspace, amount=100_000, reason="test")
    standin.state.latency = 3.0  # the provider has not answered yet when Stop is pressed
    page = new_page()
    log_in(page, site_url, "admin@example.com", path="/w/acme/ai/")
    page.fill("textarea[name=prompt]", LONG_PROMPT)
    page.click("[data-send]")
    page.wait_for_timeout(500)
    page.click("[data-stop]")
    page.wait_for_function(
        "document.getElementById('stream-status').textContent.startsWith('Stopped before')"
    )
    assert not page.locator("#live-error").is_visible()  # not a red error card
    assert "nothing was charged" in page.locator("#stream-status").inner_text()
    assert page.locator("[data-send]").is_enabled()
    row = wait_for_row()
    assert row.outcome == Outcome.CLIENT_DISCONNECTED  # the user's choice, not the provider's
    assert row.credits_charged == 0
    assert credits_balance(workspace=workspace) == 100_000


@pytest.mark.django_db(transaction=True)
def test_a_key_found_invalid_while_the_page_is_open_stops_send_without_a_reload(
    new_page, site_url, standin, acme
):
    from llm_keys.services import Actor, llm_key_record_check, llm_key_set
    from providers import CheckOutcome, CheckResult

    workspace, admin = acme
    MembershipFactory(workspace=workspace, role="member", user__email="member@example.com")
    llm_key = llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin))
    page = new_page()
    log_in(page, site_url, "member@example.com", path="/w/acme/ai/")
    assert page.locator("[data-next-credential-source=byok]").is_visible()

    # The periodic check finds the key invalid while the member has the page open.
    llm_key_record_check(
        llm_key=llm_key,
        result=CheckResult(outcome=CheckOutcome.INVALID, reason="invalid x-api-key"),
        actor=Actor(label="system (periodic check)"),
    )
    page.fill("textarea[name=prompt]", "Hello")
    page.click("[data-send]")

    page.wait_for_selector("[data-next-credential-source=none]")
    assert page.locator("[data-send]").is_disabled()
    assert page.locator("[data-send]").get_attribute("aria-describedby") == "send-blocked"
    blocked = page.locator("#send-blocked").inner_text()
    assert "the periodic check found it invalid" in blocked
    assert "ask admin@example.com" in blocked
    assert "the periodic check found it invalid" in page.locator("#live-error").inner_text()
    assert AIRequest.objects.get().outcome == Outcome.KEY_INVALID
    page.screenshot(path=str(OUTPUT / "try-ai-key-found-invalid.png"), full_page=True)
