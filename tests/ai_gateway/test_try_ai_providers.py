"""Try AI with every provider the workspace can use (issue 22 item 5, decision 150): the
picker groups each usable provider's models, and its session API sends OpenAI and Gemini
models through that provider's adapter and the same request lifecycle as Anthropic's."""

import json
import re
import time

import pytest
from django.core.cache import cache

from ai_gateway.models import AIRequest
from ai_gateway.try_ai import provider_of
from credits.selectors import credits_balance
from credits.services import credits_member_limit_set
from llm_keys.models import KeyStatus, LLMKey, Provider
from llm_keys.services import Actor, llm_key_set
from tests.ai_gateway.helpers import post, post_streamed, streamed
from tests.factories import fake_gemini_key, fake_openai_key

AI_PAGE = "/w/acme/ai/"
STATUS = "/w/acme/ai/status/"
OPENAI_CHAT = "/api/v1/w/acme/openai/chat/completions"
GEMINI_STREAM = "/api/v1/w/acme/gemini/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
GEMINI_PLAIN = "/api/v1/w/acme/gemini/models/gemini-2.5-flash:generateContent"


def groups(html: str) -> dict[str, dict[str, str]]:
    """The picker's optgroups: label → {model: option text}."""
    found = {}
    for label, inner in re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', html, re.S):
        found[label] = dict(re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', inner))
    return found


def disabled_options(html: str) -> set[str]:
    return set(re.findall(r'<option value="([^"]+)"[^>]*\bdisabled\b', html))


def openai_body(**overrides):
    return {
        "model": "gpt-5-mini",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_completion_tokens": 200,
        **overrides,
    }


def gemini_body():
    return {
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "generationConfig": {"maxOutputTokens": 200},
    }


def events(raw: bytes) -> list[tuple[str, dict]]:
    """(event name, data) of a stream, whatever its line endings; ``[DONE]`` left out."""
    found = []
    for block in re.split(r"\r?\n\r?\n", raw.decode()):
        name = re.search(r"^event: (.+)$", block, re.M)
        data = re.search(r"^data: (.+)$", block, re.M)
        if data and data[1] != "[DONE]":
            found.append((name[1] if name else "message", json.loads(data[1])))
    return found


def last_row(workspace) -> AIRequest:
    return AIRequest.objects.filter(workspace=workspace).latest("id")


# --- The picker -------------------------------------------------------------------------


def test_the_picker_groups_every_usable_providers_models(member_client, workspace, platform_keys):
    found = groups(member_client.get(AI_PAGE).content.decode())

    assert list(found) == ["Anthropic", "OpenAI", "Google Gemini"]
    assert found["OpenAI"] == {
        "gpt-5-mini": "GPT-5 mini · fastest, lowest price · "
        "2,500 / 20,000 credits per M tokens in / out"
    }
    assert found["Google Gemini"] == {
        "gemini-2.5-flash": "Gemini 2.5 Flash · balanced · "
        "3,000 / 25,000 credits per M tokens in / out"
    }  # embedding models are not offered: Try AI writes text
    assert "claude-sonnet-5" in found["Anthropic"]


def test_a_providers_own_key_shows_its_list_prices_in_usd(member_client, workspace, admin_user):
    # No platform Gemini key: Gemini is offered because the workspace has its own.
    llm_key_set(
        workspace=workspace,
        provider=Provider.GEMINI,
        raw_key=fake_gemini_key(),
        actor=Actor(user=admin_user),
    )
    found = groups(member_client.get(AI_PAGE).content.decode())

    assert list(found) == ["Anthropic", "Google Gemini"]  # OpenAI: no key, no platform key
    assert found["Google Gemini"]["gemini-2.5-flash"].endswith(
        "US$0.3 / US$2.5 per M tokens in / out"
    )
    assert "credits" in found["Anthropic"]["claude-sonnet-5"]


def test_an_invalid_key_turns_its_providers_models_off_with_the_reason(
    member_client, workspace, admin_user, platform_keys
):
    llm_key = llm_key_set(
        workspace=workspace,
        provider=Provider.OPENAI,
        raw_key=fake_openai_key(),
        actor=Actor(user=admin_user),
    )
    LLMKey.objects.filter(pk=llm_key.pk).update(status=KeyStatus.INVALID)
    html = member_client.get(AI_PAGE).content.decode()

    label = "OpenAI — off: the workspace&#x27;s OpenAI key is invalid"
    assert label in groups(html)
    assert disabled_options(html) == {"gpt-5-mini"}
    status = member_client.get(STATUS, {"model": "gpt-5-mini"}).json()
    assert (status["provider"], status["credential_source"]) == ("openai", "none")
    assert "OpenAI key is invalid" in status["send_blocked_html"]
    # Anthropic's models still send.
    assert member_client.get(STATUS).json()["credential_source"] == "platform"


# --- The session API --------------------------------------------------------------------


def test_an_openai_model_streams_through_openais_adapter_on_credits(
    member_client, workspace, member_user, funded, platform_keys, openai_standin
):
    response = post_streamed(
        member_client,
        openai_body(stream=True, stream_options={"include_usage": True}),
        path=OPENAI_CHAT,
    )

    assert response.status_code == 200
    assert response["X-Credential-Source"] == "platform"
    seen = events(streamed(response))
    text = "".join(
        (choice["delta"].get("content") or "")
        for name, data in seen
        if name == "message"
        for choice in data.get("choices", [])
    )
    assert text
    (usage,) = [data["usage"] for name, data in seen if data.get("usage")]
    name, trailer = seen[-1]
    assert name == "gateway" and trailer["credential_source"] == "platform"
    [upstream] = [r for r in openai_standin.requests if r.path == "/v1/chat/completions"]
    assert upstream.api_key.startswith("sk-proj-")
    row = last_row(workspace)
    assert (row.provider, row.user, row.outcome, row.stream) == (
        "openai",
        member_user,
        "ok",
        True,
    )
    assert (row.input_tokens, row.output_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert row.credits_charged == trailer["credits_charged"] > 0
    assert credits_balance(workspace=workspace) == funded - row.credits_charged


def test_a_gemini_model_streams_through_geminis_adapter_on_credits(
    member_client, workspace, member_user, funded, platform_keys, gemini_standin
):
    response = post_streamed(member_client, gemini_body(), path=GEMINI_STREAM)

    assert response.status_code == 200
    seen = events(streamed(response))
    usage = [data["usageMetadata"] for _, data in seen if "usageMetadata" in data][-1]
    name, trailer = seen[-1]
    assert name == "gateway"
    row = last_row(workspace)
    assert (row.provider, row.model, row.user, row.outcome) == (
        "gemini",
        "gemini-2.5-flash",
        member_user,
        "ok",
    )
    assert (row.input_tokens, row.output_tokens) == (
        usage["promptTokenCount"],
        # Gemini bills its thinking as output (decision 142).
        usage["candidatesTokenCount"] + usage.get("thoughtsTokenCount", 0),
    )
    assert row.credits_charged == trailer["credits_charged"] > 0
    assert row.provider_request_id == seen[0][1]["responseId"]  # what Stop looks up


def test_a_plain_gemini_request_on_the_workspace_key_charges_nothing(
    member_client, workspace, admin_user, funded, gemini_standin
):
    key = fake_gemini_key()
    llm_key_set(
        workspace=workspace, provider=Provider.GEMINI, raw_key=key, actor=Actor(user=admin_user)
    )
    response = post(member_client, gemini_body(), path=GEMINI_PLAIN)

    assert response.status_code == 200, response.content
    assert response["X-Credential-Source"] == "byok"
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert gemini_standin.requests[-1].api_key == key
    row = last_row(workspace)
    assert (row.provider, row.credential_source, row.credits_charged) == ("gemini", "byok", 0)
    assert credits_balance(workspace=workspace) == funded


def test_a_member_at_their_limit_through_anthropic_is_refused_on_openai(
    member_client, workspace, member_user, funded, platform_keys, openai_standin
):
    anthropic = post(
        member_client,
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    spent = anthropic.json()["credits_charged"]
    assert anthropic.status_code == 200 and spent > 0
    # The admin sets the member's limit to what they have spent (on Anthropic) this month.
    credits_member_limit_set(workspace=workspace, member=member_user, monthly_limit=spent)

    refused = post(member_client, openai_body(), path=OPENAI_CHAT)

    assert refused.status_code == 402
    assert refused.json()["error"]["type"] == "member_credit_limit"
    assert not [r for r in openai_standin.requests if r.path == "/v1/chat/completions"]
    row = last_row(workspace)
    assert (row.provider, row.error_type, row.credits_charged) == (
        "openai",
        "member_credit_limit",
        0,
    )


def test_the_session_api_refuses_without_a_session_or_csrf(client, workspace, platform_keys):
    anonymous = post(client, openai_body(), path=OPENAI_CHAT)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    wrong_method = client.get(GEMINI_PLAIN)
    assert wrong_method.status_code == 405


def test_an_openai_model_without_any_key_is_refused_in_words(member_client, workspace, funded):
    # Neither a workspace key nor a platform key for OpenAI: BYOK-only.
    response = post(member_client, openai_body(), path=OPENAI_CHAT)

    assert response.status_code == 503
    assert "PLATFORM_OPENAI_API_KEY" in response.json()["error"]["message"]


@pytest.mark.parametrize("model", ["gpt-5-mini", "gemini-2.5-flash"])
def test_the_form_without_javascript_sends_to_the_models_provider(
    member_client, workspace, funded, platform_keys, model
):
    form = {"model": model, "max_tokens": 200, "prompt": "Say hello", "system": "Be brief"}
    response = member_client.post(AI_PAGE, form)

    assert response.status_code == 200
    html = response.content.decode()
    answer = re.search(r'<p class="answer">([^<]*)</p>', html)[1]
    assert answer.strip()
    row = last_row(workspace)
    assert (row.provider, row.model, row.outcome, row.stream) == (
        provider_of(model),
        model,
        "ok",
        False,
    )
    assert f'data-credits-charged="{row.credits_charged}"' in html and row.credits_charged > 0


def test_openai_and_gemini_on_try_ai_count_against_the_members_limits(
    member_client, workspace, funded, platform_keys, settings
):
    """Decision 127: Try AI's OpenAI and Gemini requests count against the member's request
    rate as its Anthropic requests do; over it, 429 with ``retry-after``, nothing sent."""
    settings.AI_API_TOKEN_REQUESTS_PER_MINUTE = 2
    # Counters of this test alone (other tests' requests of this minute would count).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "try-ai-limits",
        }
    }
    cache.clear()
    if time.time() % 60 > 50:  # keep the three requests inside one one-minute window
        time.sleep(61 - time.time() % 60)

    answers = [
        post(member_client, openai_body(), path=OPENAI_CHAT),
        post(member_client, gemini_body(), path=GEMINI_PLAIN),
        post(member_client, openai_body(), path=OPENAI_CHAT),
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    refusal = answers[-1]
    assert refusal.json()["error"]["type"] == "rate_limit_error"
    assert "AI_API_TOKEN_REQUESTS_PER_MINUTE" in refusal.json()["error"]["message"]
    assert 1 <= int(refusal["retry-after"]) <= 61
    assert AIRequest.objects.count() == 2
