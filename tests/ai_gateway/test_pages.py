"""The AI page, the usage page, and what the settings page now says about credits."""

from credits.services import credits_grant
from llm_keys.models import KeyStatus, LLMKey
from tests.factories import MembershipFactory, UserFactory

from .helpers import MODEL, body, ledger, post

AI_PAGE = "/w/acme/ai/"
USAGE_PAGE = "/w/acme/usage/"


def prompt(client, **overrides):
    data = {"model": MODEL, "max_tokens": 64, "system": "", "prompt": "Say hello"}
    data.update(overrides)
    return client.post(AI_PAGE, data)


# --- the AI page ------------------------------------------------------------------------------


def test_ai_page_refuses_outsiders_and_anonymous(outsider_client, client, workspace):
    assert outsider_client.get(AI_PAGE).status_code == 404
    assert prompt(outsider_client).status_code == 404
    anonymous = client.get(AI_PAGE)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_member_tries_a_prompt_paid_with_credits(member_client, workspace, funded, standin):
    page = member_client.get(AI_PAGE)
    assert page.status_code == 200
    assert 'data-next-credential-source="platform"' in page.content.decode()

    response = prompt(member_client)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Stand-in reply to: Say hello" in html
    assert 'data-credential-source="platform"' in html
    charged = ledger(workspace)[-1]
    assert charged[0] == "settle"
    assert "data-credits-charged=" in html and 'data-credits-charged="0"' not in html


def test_member_tries_a_prompt_paid_with_the_workspace_key(
    member_client, workspace, saved_key, standin
):
    response = prompt(member_client)

    html = response.content.decode()
    assert 'data-credential-source="byok"' in html
    assert 'data-credits-charged="0"' in html
    assert "the workspace's Anthropic key" in html


def test_ai_page_shows_an_invalid_key_refusal(member_client, workspace, saved_key, standin):
    LLMKey.objects.filter(pk=saved_key.pk).update(status=KeyStatus.INVALID)

    response = prompt(member_client)

    assert response.status_code == 409
    html = response.content.decode()
    assert "update it in Workspace Settings → LLM Key" in html
    assert 'data-next-credential-source="none"' in html


def test_ai_page_shows_insufficient_credits(member_client, workspace, standin):
    response = prompt(member_client)

    assert response.status_code == 402
    assert "Not enough AI credits" in response.content.decode()
    assert standin.requests == []


def test_ai_page_form_errors(member_client, workspace, funded, standin):
    response = prompt(member_client, prompt="", max_tokens=0)

    assert response.status_code == 400
    html = response.content.decode()
    assert "Write a prompt first." in html
    assert standin.requests == []


# --- the usage page ---------------------------------------------------------------------------


def test_usage_page_refuses_outsiders_and_anonymous(outsider_client, client, workspace):
    assert outsider_client.get(USAGE_PAGE).status_code == 404
    assert client.get(USAGE_PAGE).status_code == 302


def test_admin_sees_balance_ledger_and_everyones_requests(
    admin_client, member_client, workspace, funded, standin
):
    post(member_client, body())
    post(admin_client, body(model="claude-haiku-4-5"))

    response = admin_client.get(USAGE_PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    balance = funded - sum(-amount for kind, amount in ledger(workspace) if kind != "grant")
    assert f'data-credits-balance="{balance}"' in html
    assert f"<strong>{balance:,}</strong>" in html  # thousands separated for people
    assert 'data-section="ledger"' in html
    assert 'data-entry-kind="settle"' in html and 'data-entry-kind="grant"' in html
    assert 'data-source="platform"' in html
    assert 'data-model="claude-sonnet-5"' in html and 'data-model="claude-haiku-4-5"' in html
    assert "member@example.com" in html and "admin@example.com" in html


def test_member_sees_only_their_own_requests_and_no_ledger(
    admin_client, member_client, workspace, funded, standin
):
    post(admin_client, body(model="claude-haiku-4-5"))
    post(member_client, body())

    html = member_client.get(USAGE_PAGE).content.decode()

    assert 'data-section="ledger"' not in html
    assert 'data-model="claude-sonnet-5"' in html
    assert 'data-model="claude-haiku-4-5"' not in html
    assert html.count("data-ai-request=") == 1


def test_usage_page_paginates_the_ledger(admin_client, workspace, standin):
    for n in range(30):
        credits_grant(workspace=workspace, amount=n + 1, reason=f"grant {n}")

    first = admin_client.get(USAGE_PAGE).content.decode()
    second = admin_client.get(USAGE_PAGE + "?page=2").content.decode()

    assert first.count('data-entry-kind="grant"') == 25
    assert second.count('data-entry-kind="grant"') == 5
    assert "Page 2 of 2" in second


def test_usage_page_groups_by_source(admin_client, member_client, workspace, funded, standin):
    post(member_client, body())
    from llm_keys.services import Actor, llm_key_set
    from tests.factories import fake_key

    admin = UserFactory()
    MembershipFactory(workspace=workspace, user=admin, role="admin")
    llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin))
    post(member_client, body())

    html = admin_client.get(USAGE_PAGE).content.decode()

    assert 'data-source="platform"' in html and 'data-source="byok"' in html
    assert 'data-next-credential-source="byok"' in html


# --- the settings page ------------------------------------------------------------------------


def test_settings_page_shows_balance_and_next_credentials(admin_client, workspace, funded):
    html = admin_client.get("/w/acme/settings/llm-key/").content.decode()

    assert f'data-credits-balance="{funded}"' in html
    assert 'data-next-credential-source="platform"' in html


def test_settings_page_says_an_invalid_key_stops_requests(admin_client, workspace, saved_key):
    LLMKey.objects.filter(pk=saved_key.pk).update(status=KeyStatus.INVALID)

    html = admin_client.get("/w/acme/settings/llm-key/").content.decode()

    assert 'data-next-credential-source="none"' in html


def test_workspace_home_links_to_the_new_pages(member_client, workspace):
    html = member_client.get("/w/acme/").content.decode()

    assert AI_PAGE in html and USAGE_PAGE in html
