"""The AI page, the usage page, and what the settings page now says about credits."""

from llm_keys.models import KeyStatus, LLMKey

from .helpers import MODEL, ledger

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
    assert ">Workspace key<" in html  # the usage page's word for it


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


# The usage page's tests are in test_usage_page.py.


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
