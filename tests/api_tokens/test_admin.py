import pytest
from django.urls import reverse

from api_tokens.models import ApiToken, ApiTokenEvent
from api_tokens.services import api_token_authenticate
from tests.factories import WorkspaceFactory, api_token_for

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:api_tokens_apitoken_changelist")


def test_support_sees_tokens_but_never_a_token_or_its_hash(support_client, workspace):
    token, raw = api_token_for(workspace, "copilot")
    pages = [
        support_client.get(CHANGELIST),
        support_client.get(CHANGELIST + "?q=copilot"),
        support_client.get(reverse("admin:api_tokens_apitoken_change", args=[token.pk])),
        support_client.get(reverse("admin:api_tokens_apitokenevent_changelist")),
    ]
    for page in pages:
        assert page.status_code == 200
        assert raw.encode() not in page.content
        assert token.token_hash.encode() not in page.content
    assert b"copilot" in pages[1].content and token.masked.encode() in pages[0].content


def test_support_can_search_by_workspace_and_prefix(support_client, workspace):
    mine, _ = api_token_for(workspace, "mine")
    api_token_for(WorkspaceFactory(slug="beta"), "theirs")
    by_slug = support_client.get(CHANGELIST + "?q=beta").content
    assert b"theirs" in by_slug and b">mine<" not in by_slug
    by_prefix = support_client.get(CHANGELIST + f"?q={mine.prefix}").content
    assert b"mine" in by_prefix and b"theirs" not in by_prefix


def test_the_hash_is_no_search_target(support_client, workspace):
    token, _ = api_token_for(workspace, "copilot")
    assert b"copilot" not in support_client.get(CHANGELIST + f"?q={token.token_hash}").content


@pytest.mark.parametrize(
    ("url", "lookup"),
    [
        (CHANGELIST, "token_hash__startswith"),
        (CHANGELIST, "token_hash"),
        (reverse("admin:workspaces_workspace_changelist"), "api_tokens__token_hash__startswith"),
        (reverse("admin:workspaces_workspace_changelist"), "llm_keys__ciphertext__startswith"),
    ],
)
def test_no_admin_url_can_probe_a_hash_or_ciphertext(support_client, workspace, url, lookup):
    token, _ = api_token_for(workspace, "copilot")
    response = support_client.get(url + f"?{lookup}={token.token_hash[:2]}")
    assert response.status_code == 400
    assert b"copilot" not in response.content and b"acme" not in response.content.lower()


def test_support_revokes_with_the_action_and_the_trail_names_them(
    support_client, support_user, workspace
):
    token, raw = api_token_for(workspace, "copilot")
    response = support_client.post(
        CHANGELIST, {"action": "revoke_tokens", "_selected_action": [token.pk]}, follow=True
    )
    assert b"Revoked 1 token(s)" in response.content
    assert api_token_authenticate(raw_token=raw) is None
    event = ApiTokenEvent.objects.get(action="revoked")
    assert event.actor == support_user


def test_support_cannot_add_edit_or_delete(support_client, workspace):
    token, _ = api_token_for(workspace, "copilot")
    assert support_client.get(reverse("admin:api_tokens_apitoken_add")).status_code == 403
    delete = reverse("admin:api_tokens_apitoken_delete", args=[token.pk])
    assert support_client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:api_tokens_apitoken_change", args=[token.pk])
    support_client.post(change, {"name": "renamed", "token_hash": "0" * 64})
    token.refresh_from_db()
    assert token.name == "copilot"
    assert ApiToken.objects.count() == 1
