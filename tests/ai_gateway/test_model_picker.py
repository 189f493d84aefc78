"""Try AI's model picker: names, tiers and prices from the price table, one entry per model."""

import re

AI_PAGE = "/w/acme/ai/"


def options(html: str) -> dict[str, str]:
    return dict(re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', html))


def test_the_picker_refuses_outsiders(outsider_client, client, workspace):
    assert outsider_client.get(AI_PAGE).status_code == 404
    assert client.get(AI_PAGE).status_code == 302


def test_one_entry_per_model_with_name_tier_and_credits(member_client, workspace, settings):
    settings.AI_MODEL_PRICES = {
        **settings.AI_MODEL_PRICES,
        "claude-sonnet-4-5": {**settings.AI_MODEL_PRICES["claude-sonnet-4-5"], "input": 31_000},
    }
    html = member_client.get(AI_PAGE).content.decode()
    shown = options(html)

    assert "claude-sonnet-4-5-20250929" not in shown  # the dated snapshot of claude-sonnet-4-5
    assert "claude-haiku-4-5-20251001" not in shown
    undated = {
        m
        for m in settings.AI_MODEL_PRICES
        if m.startswith("claude-") and not re.search(r"-\d{8}$", m)
    }
    assert set(shown) == undated
    assert shown["claude-sonnet-4-5"] == (
        "Claude Sonnet 4.5 · balanced · 31,000 / 150,000 credits per M tokens in / out"
    )
    assert shown["claude-haiku-4-5"].startswith("Claude Haiku 4.5 · fastest, lowest price · ")
    assert "<optgroup" not in html  # one provider: no groups
    # Newest first within a tier.
    order = list(shown)
    assert order.index("claude-sonnet-5-5") < order.index("claude-sonnet-5")


def test_a_workspace_paying_with_its_key_sees_list_prices_in_usd(member_client, saved_key):
    shown = options(member_client.get(AI_PAGE).content.decode())
    assert shown["claude-sonnet-4-5"].endswith("US$3 / US$15 per M tokens in / out")


def test_models_try_ai_cannot_send_are_not_offered(member_client, workspace, settings):
    # Try AI speaks Anthropic's Messages API; the OpenAI and Gemini rows of the price table
    # are for their own endpoints (/openai, /gemini), not offered where they would fail.
    assert "gpt-5-mini" in settings.AI_MODEL_PRICES
    shown = options(member_client.get(AI_PAGE).content.decode())
    assert not [model for model in shown if not model.startswith("claude-")]
