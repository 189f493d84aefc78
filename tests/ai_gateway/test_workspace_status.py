"""Where admins land: the workspace list and the workspace home say who pays, how the key
is, and the balance; every settings page is one click from the workspace home."""

import re

import pytest

from credits.services import credits_grant
from llm_keys.models import KeyStatus, LLMKey
from llm_keys.services import Actor, llm_key_set
from tests.factories import MembershipFactory, WorkspaceFactory, fake_key

pytestmark = pytest.mark.django_db


def cell(html: str, attribute: str) -> str:
    match = re.search(rf'{attribute}="([^"]*)"', html)
    assert match, attribute
    return match.group(1)


def test_the_list_shows_who_pays_key_health_and_balance(admin_client, workspace, admin_user):
    other = WorkspaceFactory(name="Beta", slug="beta")
    MembershipFactory(workspace=other, user=admin_user, role="member")
    credits_grant(workspace=workspace, amount=1_500, reason="Test")
    llm_key = llm_key_set(workspace=other, raw_key=fake_key(), actor=Actor(user=admin_user))
    LLMKey.objects.filter(pk=llm_key.pk).update(
        status=KeyStatus.INVALID, status_reason="Rejected by Anthropic."
    )

    html = admin_client.get("/").content.decode()
    acme = html[html.index('data-workspace="acme"') :]
    acme = acme[: acme.index("</tr>")]
    beta = html[html.index('data-workspace="beta"') :]
    beta = beta[: beta.index("</tr>")]
    assert cell(acme, "data-paid-with") == "platform" and "AI credits" in acme
    assert cell(acme, "data-key-health") == "none" and "No key saved" in acme
    assert cell(acme, "data-balance") == "1500" and "1,500" in acme
    assert cell(beta, "data-paid-with") == "none" and "AI is stopped" in beta
    assert cell(beta, "data-key-health") == "invalid" and "Rejected by Anthropic." in beta


def test_the_list_takes_the_same_queries_for_many_workspaces(
    admin_client, admin_user, django_assert_max_num_queries
):
    for n in range(10):
        MembershipFactory(workspace=WorkspaceFactory(slug=f"w{n}"), user=admin_user)
    with django_assert_max_num_queries(8):
        admin_client.get("/")


def test_the_workspace_home_shows_status_and_links_every_settings_page(
    admin_client, member_client, workspace, admin_user
):
    llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user))
    html = admin_client.get("/w/acme/").content.decode()
    assert cell(html, "data-paid-with") == "byok"
    assert cell(html, "data-key-health") == "valid"
    for url in ("/settings/llm-key/", "/settings/members/", "/settings/api-tokens/", "/usage/"):
        assert f'class="card link-card" href="/w/acme{url}"' in html, url
    member_html = member_client.get("/w/acme/").content.decode()
    assert "/settings/members/" not in member_html.split("<main")[1]
    assert cell(member_html, "data-paid-with") == "byok"
