"""Usage, cost estimates and alerts count every provider (issue 22 item 5): requests sent
to Anthropic, OpenAI and Gemini through the gateway show on the usage page (totals, the
models table, the chart), in the CSV with their provider, in the BYOK cost estimate, and
bring the low-credit banner with advice for the providers that still spend credits."""

import csv
import io
import json
import re
from decimal import Decimal

import pytest

from ai_gateway.models import AIRequest
from credits.selectors import credits_balance
from credits.services import credits_grant
from llm_keys.models import Provider
from llm_keys.services import Actor, llm_key_set
from tests.ai_gateway.helpers import body, post
from tests.ai_gateway.test_try_ai_providers import (
    GEMINI_PLAIN,
    OPENAI_CHAT,
    gemini_body,
    openai_body,
)
from tests.factories import fake_gemini_key, fake_key, fake_openai_key

PAGE = "/w/acme/usage/"
EXPORT = "/w/acme/usage/export.csv"


def one_request_per_provider(client) -> list[AIRequest]:
    for path, data in ((None, body()), (OPENAI_CHAT, openai_body()), (GEMINI_PLAIN, gemini_body())):
        response = post(client, data, **({"path": path} if path else {}))
        assert response.status_code == 200, response.content
    return list(AIRequest.objects.order_by("id"))


def number(html: str, attribute: str) -> int:
    return int(re.search(rf'{attribute}="(-?\d+)"', html)[1])


def test_usage_page_chart_and_csv_count_every_provider(
    admin_client, workspace, funded, platform_keys
):
    rows = one_request_per_provider(admin_client)
    assert [row.provider for row in rows] == ["anthropic", "openai", "gemini"]
    assert all(row.credits_charged > 0 for row in rows)

    html = admin_client.get(PAGE).content.decode()
    assert number(html, "data-total-requests") == 3
    assert number(html, "data-total-credits") == sum(row.credits_charged for row in rows)
    for row in rows:
        assert f'data-model="{row.model}"' in html
    chart = json.loads(
        re.search(r'<script id="usage-chart-data" type="application/json">(.*?)</script>', html)[1]
    )
    assert sum(chart["requests"]["platform"]) == 3
    assert sum(chart["credits"]["platform"]) == sum(row.credits_charged for row in rows)

    exported = admin_client.get(EXPORT)
    text = b"".join(exported.streaming_content).decode()
    csv_rows = list(csv.DictReader(io.StringIO(text)))
    exported_rows = {(r["provider"], r["model"], int(r["credits_charged"])) for r in csv_rows}
    assert exported_rows == {(row.provider, row.model, row.credits_charged) for row in rows}


def test_the_byok_cost_estimate_prices_openai_and_gemini(
    admin_client, workspace, admin_user, funded
):
    for provider, key in (
        (Provider.ANTHROPIC, fake_key()),
        (Provider.OPENAI, fake_openai_key()),
        (Provider.GEMINI, fake_gemini_key()),
    ):
        llm_key_set(
            workspace=workspace, provider=provider, raw_key=key, actor=Actor(user=admin_user)
        )
    rows = one_request_per_provider(admin_client)
    assert {row.credential_source for row in rows} == {"byok"}

    html = admin_client.get(PAGE).content.decode()

    # gpt-5-mini $0.25 / $2.00, gemini-2.5-flash $0.30 / $2.50 per million tokens in / out.
    rates = {
        "gpt-5-mini": (Decimal("0.25"), Decimal("2")),
        "gemini-2.5-flash": (Decimal("0.3"), Decimal("2.5")),
    }
    for row in rows[1:]:
        usd_in, usd_out = rates[row.model]
        expected = (row.input_tokens * usd_in + row.output_tokens * usd_out) / 1_000_000
        line = re.search(rf'<tr[^>]*data-model="{row.model}".*?</tr>', html, re.S)[0]
        assert Decimal(re.search(r'data-usd="([\d.]+)"', line)[1]) == expected
    assert "no list price known" not in html
    assert "the providers' list prices" in html


@pytest.mark.django_db(transaction=True)
def test_openai_spend_brings_the_low_credit_banner_and_names_the_providers_on_credits(
    admin_client, workspace, admin_user, platform_keys, settings
):
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = 1_000
    settings.AI_CREDITS_LOW_BALANCE_PERCENT = 10  # low under 100 credits
    credits_grant(workspace=workspace, amount=100, reason="allowance")
    # Anthropic is paid by the workspace's key; OpenAI and Gemini still spend credits.
    llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user))
    assert post(admin_client, openai_body(), path=OPENAI_CHAT).status_code == 200
    assert credits_balance(workspace=workspace) < 100  # OpenAI's charge crossed the line

    html = admin_client.get(PAGE).content.decode()

    assert 'data-credits-alert="low"' in html
    assert "spend no credits" not in html  # OpenAI's requests still do
    banner = re.search(r'data-credits-alert="low">(.*?)</div>', html, re.S)[1]
    assert "save the workspace's own OpenAI or Google Gemini key in" in banner, banner


def test_the_usage_page_says_who_pays_each_providers_next_request(
    admin_client, workspace, admin_user, platform_keys
):
    """Anthropic on the workspace's key, OpenAI on AI credits, Gemini stopped by an invalid
    key: the page says each, not only Anthropic's."""
    llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user))
    llm_key_set(
        workspace=workspace,
        raw_key=fake_gemini_key(),
        actor=Actor(user=admin_user),
        provider=Provider.GEMINI,
    )
    workspace.llm_keys.filter(provider=Provider.GEMINI).update(status="invalid")

    html = admin_client.get(PAGE).content.decode()

    next_request = dict(
        re.findall(r'<dd data-provider="(\w+)" data-next-credential-source="(\w+)">', html)
    )
    assert next_request == {"anthropic": "byok", "openai": "platform", "gemini": "none"}
    assert "the workspace&#x27;s Google Gemini key is invalid" in html
