"""One statement loads a request's session, its user and, on a workspace's page, the user's
membership of the workspace with its key row (workspaces.sessions, workspaces.auth)."""

import pytest
from django.apps import apps
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session as DjangoSession
from django.db import connection
from django.test import Client
from django.utils import timezone

from ai_gateway.models import AIRequest
from tests.ai_gateway.helpers import body, post
from tests.factories import MembershipFactory, WorkspaceFactory
from workspaces.models import UserSession
from workspaces.sessions import SessionStore
from workspaces.tasks import sessions_clear_expired

pytestmark = pytest.mark.django_db

migration = __import__("workspaces.migrations.0003_user_session", fromlist=["copy_live_sessions"])


def _touching(sent: list[str], table: str) -> list[str]:
    return [sql for sql in sent if table in sql]


def test_a_byok_api_request_is_one_read_and_one_write(
    member_client, member_user, saved_key, standin, statements
):
    response = post(member_client, body())

    assert response.status_code == 200, response.content
    assert response.json()["credential_source"] == "byok"
    assert standin.requests[-1].api_key == saved_key.raw
    assert len(statements) == 2, statements
    load, insert = statements
    for table in ("workspaces_session", "auth_user", "workspaces_membership", "llm_keys_llmkey"):
        assert table in load
    assert insert.startswith('INSERT INTO "ai_gateway_airequest"')
    assert AIRequest.objects.get().user == member_user


def test_an_outsider_is_refused_from_the_same_one_read(outsider_client, workspace, statements):
    response = post(outsider_client, body())

    assert response.status_code == 404
    assert len(statements) == 1, statements
    assert "workspaces_membership" in statements[0]


def test_pages_that_are_not_a_workspace_s_load_session_and_user_only(admin_client, statements):
    admin_client.get("/")

    assert "workspaces_session" in statements[0] and "auth_user" in statements[0]
    assert "workspaces_membership" not in statements[0]
    assert not _touching(statements, 'FROM "auth_user" WHERE')


def test_a_workspace_page_reads_the_membership_once(admin_client, statements):
    assert admin_client.get("/w/acme/").status_code == 200

    assert len(_touching(statements, "workspaces_membership")) == 1


def test_a_session_is_saved_with_its_user_and_logout_deletes_it(admin_client, admin_user):
    key = admin_client.session.session_key
    assert UserSession.objects.get(session_key=key).user_id == admin_user.pk

    admin_client.post("/logout/")

    assert not UserSession.objects.filter(session_key=key).exists()


def test_deleting_a_user_deletes_the_user_s_sessions(admin_client, admin_user):
    key = admin_client.session.session_key
    admin_user.delete()

    assert not UserSession.objects.filter(session_key=key).exists()


def _loaded_session(user, *, workspace_slug: str | None = None) -> SessionStore:
    """A saved session of ``user``, loaded again as a request would (for a workspace's view
    when ``workspace_slug`` is given)."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store.save()
    loaded = SessionStore(store.session_key)
    if workspace_slug is not None:
        loaded.expect_workspace(workspace_slug)
    loaded.load()
    return loaded


def test_a_user_row_is_only_reused_for_the_user_the_session_names(admin_user, member_user):
    loaded = _loaded_session(admin_user)

    assert loaded.user_loaded_with_session(str(admin_user.pk)) == (True, admin_user)
    assert loaded.user_loaded_with_session(member_user.pk) == (False, None)


def test_a_flushed_session_hands_out_nothing_it_had_read(admin_user, workspace):
    loaded = _loaded_session(admin_user, workspace_slug="acme")
    assert loaded.user_loaded_with_session(admin_user.pk)[0] is True

    loaded.flush()

    assert loaded.user_loaded_with_session(admin_user.pk) == (False, None)
    assert loaded.member_row_loaded_with_session("acme", admin_user.pk) is None


def test_the_session_of_a_deactivated_user_is_anonymous(admin_client, admin_user):
    get_user_model().objects.filter(pk=admin_user.pk).update(is_active=False)

    response = admin_client.get("/w/acme/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_member_context_is_only_handed_out_for_its_workspace_and_user(
    admin_user, member_user, workspace
):
    other = WorkspaceFactory(slug="other")
    MembershipFactory(workspace=other, user=admin_user, role="member")
    loaded = _loaded_session(admin_user, workspace_slug="acme")

    assert loaded.member_row_loaded_with_session("acme", admin_user.pk) is not None
    assert loaded.member_row_loaded_with_session("other", admin_user.pk) is None
    assert loaded.member_row_loaded_with_session("acme", member_user.pk) is None
    # A later hint does not relabel what was loaded.
    loaded.expect_workspace("other")
    assert loaded.member_row_loaded_with_session("other", admin_user.pk) is None


def test_switching_to_user_sessions_keeps_everyone_logged_in(admin_client, admin_user, settings):
    logged_in = dict(admin_client.session.items())  # with Django's session auth hash
    UserSession.objects.all().delete()
    codec = DjangoSessionStore()
    now = timezone.now()
    for key, data, expires in (
        ("a" * 32, logged_in, now + timezone.timedelta(days=1)),
        ("b" * 32, {"anonymous": True}, now + timezone.timedelta(days=1)),
        ("c" * 32, logged_in, now - timezone.timedelta(seconds=1)),
    ):
        DjangoSession.objects.create(
            session_key=key, session_data=codec.encode(data), expire_date=expires
        )

    migration.copy_live_sessions(apps, connection.schema_editor())

    copied = dict(UserSession.objects.values_list("session_key", "user_id"))
    assert copied == {"a" * 32: admin_user.pk, "b" * 32: None}
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = "a" * 32
    assert client.get("/w/acme/").status_code == 200


def test_expired_sessions_are_cleared_daily(admin_client, settings):
    live = admin_client.session.session_key
    UserSession.objects.create(
        session_key="x" * 32,
        session_data="",
        expire_date=timezone.now() - timezone.timedelta(seconds=1),
    )
    entry = settings.CELERY_BEAT_SCHEDULE["sessions-clear-expired"]
    assert entry["task"] == sessions_clear_expired.name

    sessions_clear_expired.delay()

    assert list(UserSession.objects.values_list("session_key", flat=True)) == [live]
