import re

import pytest

from api_tokens.models import ApiToken, ApiTokenEvent
from api_tokens.services import api_token_authenticate
from tests.factories import MembershipFactory, WorkspaceFactory, api_token_for

URL = "/w/acme/settings/api-tokens/"

pytestmark = pytest.mark.django_db


def revoke_url(token) -> str:
    return f"/w/{token.workspace.slug}/settings/api-tokens/{token.pk}/revoke/"


def page_text(response) -> str:
    """The page as read: markup removed."""
    return re.sub(r"<[^>]+>", "", response.content.decode())


def new_token_in(response) -> str:
    found = re.findall(rb'value="(byok_[A-Za-z0-9_-]+)"[^>]*data-new-token', response.content)
    assert len(found) == 1, "the new token is shown exactly once"
    assert response.content.count(found[0]) == 1
    return found[0].decode()


class TestAccess:
    @pytest.fixture
    def token(self, workspace):
        return api_token_for(workspace)[0]

    def test_outsider_gets_404(self, outsider_client, token):
        for response in (
            outsider_client.get(URL),
            outsider_client.post(URL, {"name": "x"}),
            outsider_client.get(revoke_url(token)),
            outsider_client.post(revoke_url(token)),
        ):
            assert response.status_code == 404
        assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 1

    def test_member_gets_403(self, member_client, token):
        for response in (
            member_client.get(URL),
            member_client.post(URL, {"name": "x"}),
            member_client.get(revoke_url(token)),
            member_client.post(revoke_url(token)),
        ):
            assert response.status_code == 403
        assert ApiToken.objects.count() == 1 and ApiToken.objects.get().is_live

    def test_anonymous_is_sent_to_login(self, client, token):
        for response in (client.get(URL), client.post(URL), client.post(revoke_url(token))):
            assert response.status_code == 302
            assert response.url.startswith("/login/?next=")

    def test_an_admin_cannot_revoke_another_workspaces_token(self, admin_client):
        theirs, raw = api_token_for(WorkspaceFactory(slug="theirs"))
        response = admin_client.post(f"/w/acme/settings/api-tokens/{theirs.pk}/revoke/")
        assert response.status_code == 404
        assert api_token_authenticate(raw_token=raw) is not None


def test_create_shows_the_token_once_with_a_warning_and_a_copy_button(admin_client, admin_user):
    response = admin_client.post(URL, {"name": "copilot"})
    assert response.status_code == 201
    raw = new_token_in(response)
    page = response.content.decode()
    assert "it will not be shown again" in page
    assert 'data-copy-target="new-api-token"' in page and "api_tokens/copy.js" in page
    assert "no-store" in response["Cache-Control"]
    # Afterwards the page shows only the prefix and the last four characters.
    again = admin_client.get(URL).content.decode()
    token = ApiToken.objects.get()
    assert raw not in again
    assert f"{token.prefix}_…{token.last4}" in again
    assert "admin@example.com" in again and "never" in again
    assert api_token_authenticate(raw_token=raw) == token
    assert token.name == "copilot" and token.created_by == admin_user


def test_the_list_shows_last_use(admin_client, workspace):
    _, raw = api_token_for(workspace, "nightly")
    api_token_authenticate(raw_token=raw)
    page = admin_client.get(URL).content.decode()
    assert "nightly" in page
    row = re.search(r'<tr data-api-token="\d+" data-live="true">(.*?)</tr>', page, re.S).group(1)
    assert "never" not in row


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "Give the token a name"), ("x" * 101, "at most 100 characters")],
)
def test_a_bad_name_is_refused_with_a_reason(admin_client, name, message):
    response = admin_client.post(URL, {"name": name})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert b"byok_" not in response.content
    assert not ApiToken.objects.exists()


def test_a_duplicate_live_name_is_refused(admin_client, workspace):
    api_token_for(workspace, "copilot")
    response = admin_client.post(URL, {"name": "copilot"})
    assert response.status_code == 400
    assert "already has a live token named" in response.content.decode()
    assert ApiToken.objects.count() == 1


def test_revoke_asks_for_confirmation_then_revokes(admin_client, admin_user, workspace):
    token, raw = api_token_for(workspace, "copilot")
    confirm = admin_client.get(revoke_url(token))
    assert confirm.status_code == 200
    assert "Revoke “copilot”?" in confirm.content.decode()
    assert api_token_authenticate(raw_token=raw) is not None  # GET changes nothing

    response = admin_client.post(revoke_url(token), follow=True)
    assert response.redirect_chain[-1][0] == URL
    assert "is revoked" in response.content.decode()
    assert api_token_authenticate(raw_token=raw) is None
    event = ApiTokenEvent.objects.filter(action="revoked").get()
    assert event.actor == admin_user and event.token_name == "copilot"
    # A second revoke (a double click) says it was already done and writes nothing.
    again = admin_client.post(revoke_url(token), follow=True)
    assert "already revoked" in again.content.decode()
    assert ApiTokenEvent.objects.filter(action="revoked").count() == 1


def test_the_page_is_linked_from_the_workspace_nav_for_admins(admin_client, member_client):
    assert URL.encode() in admin_client.get("/w/acme/").content
    assert URL.encode() not in member_client.get("/w/acme/").content


def test_a_token_keeps_its_creators_email_and_says_when_they_are_no_longer_an_admin(
    admin_client, workspace
):
    former = MembershipFactory(workspace=workspace, role="admin", user__email="former@example.com")
    api_token_for(workspace, "nightly", user=former.user)
    api_token_for(workspace, "weekly", user=former.user)
    html = page_text(admin_client.get(URL))
    assert "former@example.com" in html and "no longer an admin" not in html

    former.role = "member"
    former.save()
    html = page_text(admin_client.get(URL))
    assert "no longer an admin of this workspace" in html
    assert "Revoke the 2 tokens of former@example.com" in html

    former.user.delete()
    html = page_text(admin_client.get(URL))
    assert "former@example.com" in html and "created by system" not in html
    assert "account deleted" in html

    response = admin_client.post(
        URL + "revoke-created-by/", {"email": "former@example.com"}, follow=True
    )
    assert "2 tokens of former@example.com are revoked" in page_text(response)
    assert not ApiToken.objects.filter(workspace=workspace, revoked_at__isnull=True).exists()
    assert ApiTokenEvent.objects.filter(action="revoked").count() == 2


def test_revoking_a_creators_tokens_is_for_admins_of_this_workspace_only(
    member_client, outsider_client, workspace, admin_user
):
    api_token_for(workspace, "nightly", user=admin_user)
    data = {"email": admin_user.email}
    assert outsider_client.post(URL + "revoke-created-by/", data).status_code == 404
    assert member_client.post(URL + "revoke-created-by/", data).status_code == 403
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 1
