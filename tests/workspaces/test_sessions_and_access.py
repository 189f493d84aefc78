"""The session store (Django's, with the user as a column), the e-mail backend and the
access helper that every workspace view goes through."""

import datetime

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory
from django.utils import timezone

from llm_keys.access import get_member_context
from llm_keys.models import LLMKey
from llm_keys.services import llm_key_decrypt
from workspaces.auth import EmailBackend
from workspaces.models import UserSession
from workspaces.sessions import SessionStore

pytestmark = pytest.mark.django_db


def _stored_session(**data) -> str:
    session = SessionStore()
    session.update(data)
    session.save()
    return session.session_key


def test_a_saved_session_loads_its_data():
    key = _stored_session(answer=42)
    assert SessionStore(key).load() == {"answer": 42}


def test_an_expired_session_loads_nothing_and_gets_a_new_key():
    key = _stored_session(answer=42)
    UserSession.objects.filter(session_key=key).update(
        expire_date=timezone.now() - datetime.timedelta(seconds=1)
    )
    store = SessionStore(key)
    assert store.load() == {}
    assert store.session_key is None


def test_an_unknown_session_key_loads_nothing():
    assert SessionStore("x" * 32).load() == {}


def test_a_logged_in_client_stays_logged_in_and_logout_ends_it(admin_client):
    assert admin_client.get("/w/acme/").status_code == 200
    session_key = admin_client.session.session_key
    admin_client.post("/logout/")
    assert not UserSession.objects.filter(session_key=session_key).exists()
    assert admin_client.get("/w/acme/").status_code == 302


def test_get_user_returns_the_active_user_with_aware_datetimes(admin_user):
    user = EmailBackend().get_user(admin_user.pk)
    assert user == admin_user
    assert user.email == "admin@example.com"
    assert user.password == admin_user.password
    assert timezone.is_aware(user.date_joined)


def test_get_user_refuses_an_inactive_or_missing_user(admin_user):
    admin_user.is_active = False
    admin_user.save()
    assert EmailBackend().get_user(admin_user.pk) is None
    assert EmailBackend().get_user(admin_user.pk + 1000) is None


def test_a_password_change_elsewhere_logs_the_old_session_out(admin_client, admin_user):
    admin_user.set_password("a-new-password-123")
    admin_user.save()
    assert admin_client.get("/w/acme/").status_code == 302


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_access_helper_returns_workspace_and_membership(member_user, workspace):
    member = get_member_context(_request(member_user), "acme")
    assert member.workspace == workspace
    assert member.workspace.name == "Acme"
    assert member.membership.role == "member"
    assert member.membership.user_id == member_user.pk
    assert timezone.is_aware(member.membership.created_at)
    assert member.llm_key is None


def test_access_helper_refuses_outsiders_and_non_admins(member_user, outsider_user, workspace):
    with pytest.raises(Http404):
        get_member_context(_request(outsider_user), "acme")
    with pytest.raises(Http404):
        get_member_context(_request(member_user), "no-such-workspace")
    with pytest.raises(PermissionDenied):
        get_member_context(_request(member_user), "acme", admin=True)


def test_session_user_id_survives_as_django_stores_it(admin_client, admin_user):
    assert admin_client.session[SESSION_KEY] == str(admin_user.pk)
    session = UserSession.objects.get(session_key=admin_client.session.session_key)
    assert session.user_id == admin_user.pk


def test_deleting_a_user_deletes_the_users_sessions(admin_client, admin_user):
    session_key = admin_client.session.session_key
    admin_user.delete()
    assert not UserSession.objects.filter(session_key=session_key).exists()


def test_access_helper_loads_the_workspace_key_in_the_same_statement(
    member_user, saved_key, workspace, django_assert_num_queries
):
    request = _request(member_user)
    with django_assert_num_queries(1):
        member = get_member_context(request, "acme")
        llm_key = member.llm_key
        assert (llm_key.status, llm_key.hint) == ("valid", saved_key.hint)
        assert member.workspace.slug == "acme"
    assert llm_key.pk == LLMKey.objects.get(workspace=workspace).pk
    assert llm_key_decrypt(llm_key) == saved_key.raw


def test_access_helper_reads_only_the_anthropic_key_of_this_workspace(
    member_user, outsider_user, saved_key, workspace
):
    other = get_member_context(_request(outsider_user), "other")
    assert other.llm_key is None
    assert get_member_context(_request(member_user), "acme").llm_key.pk == saved_key.pk
