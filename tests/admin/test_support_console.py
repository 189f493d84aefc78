"""The support console answers support's questions: buttons named for what they do, search
by a member's e-mail, the key and balance first, and no link support cannot follow."""

import re
from html import unescape

import pytest
from django.test import Client

from llm_keys.models import KeyEvent, KeyStatus, LLMKey
from tests.admin.conftest import assert_no_secret

pytestmark = pytest.mark.django_db


def test_outsiders_and_members_cannot_use_the_new_key_buttons(
    client, member_client, sentinel_llm_key
):
    for who in (client, member_client):
        check = who.post(f"/admin/llm_keys/llmkey/{sentinel_llm_key.pk}/check/")
        remove = who.post(f"/admin/llm_keys/llmkey/{sentinel_llm_key.pk}/remove/")
        assert check.status_code == 302 and "/admin/login/" in check.url
        assert remove.status_code == 302 and "/admin/login/" in remove.url
    assert LLMKey.objects.filter(pk=sentinel_llm_key.pk).exists()


def test_the_key_page_has_check_now_and_remove_key_and_no_delete(support_client, sentinel_llm_key):
    page = support_client.get(f"/admin/llm_keys/llmkey/{sentinel_llm_key.pk}/change/")
    html = page.content.decode()
    assert "data-admin-check" in html and ">Check now</button>" in html
    assert "data-admin-remove" in html and ">Remove key</a>" in html
    assert 'class="deletelink"' not in html
    assert ">Delete<" not in html
    assert_no_secret(html, sentinel_llm_key, "key page")


def test_check_now_on_the_key_page_checks_and_audits(support_client, sentinel_llm_key):
    response = support_client.post(f"/admin/llm_keys/llmkey/{sentinel_llm_key.pk}/check/")
    assert response.status_code == 302
    assert response.url.endswith(f"/admin/llm_keys/llmkey/{sentinel_llm_key.pk}/change/")
    event = KeyEvent.objects.latest("id")
    assert event.actor.email == "support@example.com"
    assert event.action in {"checked", "became_valid"}
    sentinel_llm_key.refresh_from_db()
    assert sentinel_llm_key.status == KeyStatus.VALID
    assert sentinel_llm_key.last_checked_at is not None
    assert (
        support_client.get(f"/admin/llm_keys/llmkey/{sentinel_llm_key.pk}/check/").status_code
        == 405
    )


def test_remove_key_asks_then_removes_through_the_service(
    support_client, sentinel_llm_key, workspace
):
    url = f"/admin/llm_keys/llmkey/{sentinel_llm_key.pk}/remove/"
    confirm = support_client.get(url).content.decode()
    assert "will use AI credits again" in confirm
    assert "Yes, remove the key" in confirm
    assert LLMKey.objects.exists()
    response = support_client.post(url)
    assert response.status_code == 302
    assert response.url.endswith(f"/admin/workspaces/workspace/{workspace.pk}/change/")
    assert not LLMKey.objects.exists()
    assert KeyEvent.objects.filter(action="removed", actor__email="support@example.com").exists()


def test_workspaces_are_found_by_a_members_email(support_client, sentinel_llm_key, member_user):
    found = support_client.get("/admin/workspaces/workspace/", {"q": "member@example.com"})
    assert "Acme" in found.content.decode()
    missing = support_client.get("/admin/workspaces/workspace/", {"q": "nobody@example.com"})
    assert "0 results" in missing.content.decode()


def test_workspace_list_shows_status_reason_last_checked_and_balance(
    support_client, sentinel_llm_key
):
    LLMKey.objects.filter(pk=sentinel_llm_key.pk).update(
        status=KeyStatus.INVALID, status_reason="Rejected by Anthropic."
    )
    html = support_client.get("/admin/workspaces/workspace/").content.decode()
    headers = re.findall(r'<th scope="col"[^>]*>.*?<(?:a|span)[^>]*>([^<]+)<', html, re.S)
    assert [h.strip() for h in headers][-5:] == [
        "Name",
        "Key status",
        "Reason",
        "Last checked",
        "Balance (credits)",
    ]
    assert "Rejected by Anthropic." in html
    assert "4,880" in html  # 5,000 granted, 120 charged


def test_workspace_page_puts_key_balance_and_members_before_the_requests(
    support_client, sentinel_llm_key, workspace
):
    html = support_client.get(
        f"/admin/workspaces/workspace/{workspace.pk}/change/"
    ).content.decode()
    key_at = html.index("support-summary")
    balance_at = html.index("4,880")
    members_at = html.index("admin@example.com")
    requests_at = html.index("Recent AI requests")
    assert key_at < requests_at and balance_at < requests_at and members_at < requests_at
    # Support cannot open user pages, nor the workspace's own pages: no link to either.
    assert "/admin/auth/user/" not in html
    assert "View on site" not in html and 'href="/w/acme/' not in html
    assert_no_secret(html, sentinel_llm_key, "workspace page")


def test_pages_support_opens_link_only_to_pages_support_can_open(
    support_client, sentinel_llm_key, workspace
):
    pages = [
        "/admin/",
        f"/admin/workspaces/workspace/{workspace.pk}/change/",
        f"/admin/llm_keys/llmkey/{sentinel_llm_key.pk}/change/",
        "/admin/llm_keys/keyevent/",
        f"/admin/llm_keys/keyevent/{KeyEvent.objects.first().pk}/change/",
        "/admin/credits/creditentry/",
        "/admin/ai_gateway/airequest/",
    ]
    for page in pages:
        html = support_client.get(page).content.decode()
        for href in set(re.findall(r'href="(/admin/[^"#?]*)', html)):
            if href.endswith("/logout/"):
                continue
            status = support_client.get(href).status_code
            assert status in (200, 302), f"{page} links to {href}, which answers {status}"


def test_admin_login_asks_for_an_email(client):
    html = Client().get("/admin/login/").content.decode()
    assert '<label for="id_username" class="required">Email:</label>' in html
    assert 'type="email"' in html


def test_credits_show_thousands_separators_in_the_admin(support_client, sentinel_llm_key):
    html = support_client.get("/admin/credits/creditentry/").content.decode()
    assert "+5,000" in html
    assert "4,880" in html


def test_workspaces_filter_by_key_status(support_client, sentinel_llm_key):
    from tests.factories import WorkspaceFactory

    WorkspaceFactory(name="Keyless", slug="keyless")
    LLMKey.objects.filter(pk=sentinel_llm_key.pk).update(status=KeyStatus.INVALID)
    listing = "/admin/workspaces/workspace/"
    invalid = support_client.get(listing, {"key_status": "invalid"}).content.decode()
    assert ">Acme<" in invalid and "Keyless" not in invalid
    none = support_client.get(listing, {"key_status": "none"}).content.decode()
    assert "Keyless" in none and ">Acme<" not in none
    valid = support_client.get(listing, {"key_status": "valid"}).content.decode()
    assert "0 workspaces" in valid or "0 results" in valid


def test_the_index_lists_workspaces_first_and_names_the_lockouts(support_client):
    html = support_client.get("/admin/").content.decode()
    sections = re.findall(r"<caption>\s*<a[^>]*>([^<]+)</a>", html)
    assert sections[0] == "Workspaces"
    assert "Login lockouts" in sections and "Axes" not in sections and "AXES" not in html


def test_check_now_is_one_click_from_the_workspace_page(support_client, sentinel_llm_key):
    page = f"/admin/workspaces/workspace/{sentinel_llm_key.workspace_id}/change/"
    html = support_client.get(page).content.decode()
    action = re.search(r'formaction="([^"]+)"[^>]*data-admin-check', html)
    assert action, "no Check key now button on the workspace page"
    response = support_client.post(unescape(action.group(1)))
    assert response.status_code == 302 and response.url == page
    assert KeyEvent.objects.latest("id").actor.email == "support@example.com"
    followed = support_client.get(page).content.decode()
    assert "checked" in followed.lower()
