import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError

from tests.factories import PASSWORD, MembershipFactory
from workspaces.models import Membership, Workspace

pytestmark = pytest.mark.django_db


def test_healthz_answers_json_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_login_with_email_in_any_case(client, admin_user):
    response = client.post("/login/", {"username": "ADMIN@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_login_with_a_wrong_password_says_so(client, admin_user):
    response = client.post("/login/", {"username": "admin@example.com", "password": "nope"})
    assert response.status_code == 200
    assert "That email and password do not match an account" in response.content.decode()


class TestWorkspaceHome:
    def test_anonymous_is_sent_to_login(self, client, workspace):
        assert client.get("/w/acme/").url.startswith("/login/")

    def test_outsider_gets_404(self, outsider_client, workspace):
        assert outsider_client.get("/w/acme/").status_code == 404

    def test_member_sees_it_without_the_admin_link(self, member_client):
        body = member_client.get("/w/acme/").content.decode()
        assert "Acme" in body
        assert "/w/acme/settings/llm-key/" not in body

    def test_admin_sees_the_settings_link(self, admin_client):
        assert "/w/acme/settings/llm-key/" in admin_client.get("/w/acme/").content.decode()

    def test_home_lists_only_my_workspaces(self, admin_client, outsider_user):
        body = admin_client.get("/").content.decode()
        assert "/w/acme/" in body and "/w/other/" not in body


def test_one_membership_per_workspace_and_user(admin_user, workspace):
    with pytest.raises(IntegrityError):
        MembershipFactory(workspace=workspace, user=admin_user)


def test_roles_are_checked_by_the_database(workspace, admin_user):
    with pytest.raises(IntegrityError):
        Membership.objects.filter(user=admin_user).update(role="owner")


class TestCreateWorkspaceCommand:
    def test_creates_workspace_and_admin_with_password_from_stdin(self, monkeypatch, client):
        monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-Passw0rd!\n"))
        out = io.StringIO()
        call_command(
            "create_workspace",
            "beta",
            "--name",
            "Beta",
            "--admin",
            "Ops@Example.com",
            "--password-stdin",
            stdout=out,
        )
        assert "Created workspace 'beta'" in out.getvalue()
        assert "s3cret" not in out.getvalue()
        membership = Membership.objects.get(workspace__slug="beta")
        assert membership.role == "admin" and membership.user.email == "ops@example.com"
        response = client.post(
            "/login/", {"username": "ops@example.com", "password": "s3cret-Passw0rd!"}
        )
        assert response.status_code == 302

    def test_reuses_an_existing_user(self, admin_user):
        call_command(
            "create_workspace",
            "beta",
            "--name",
            "Beta",
            "--admin",
            admin_user.email,
            stdout=io.StringIO(),
        )
        assert get_user_model().objects.filter(email=admin_user.email).count() == 1

    @pytest.mark.parametrize(
        "args,message",
        [
            (["acme", "--name", "Again", "--admin", "a@example.com"], "already exists"),
            (["Not A Slug!", "--name", "X", "--admin", "a@example.com"], "valid “slug”"),
            (["fine", "--name", "X", "--admin", "not-an-email"], "valid email"),
        ],
    )
    def test_bad_input_is_one_clear_error_and_writes_nothing(self, workspace, args, message):
        before = Workspace.objects.count()
        with pytest.raises(CommandError, match=message):
            call_command("create_workspace", *args, stdout=io.StringIO())
        assert Workspace.objects.count() == before

    def test_empty_password_stdin_is_refused(self, monkeypatch):
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        with pytest.raises(CommandError, match="standard input was empty"):
            call_command(
                "create_workspace",
                "beta",
                "--name",
                "B",
                "--admin",
                "b@example.com",
                "--password-stdin",
            )
        assert not Workspace.objects.filter(slug="beta").exists()


def test_generate_encryption_key_prints_a_usable_ring_entry():
    from llm_keys.crypto import KeyRing

    out = io.StringIO()
    call_command("generate_encryption_key", "--id", "k2026", stdout=out)
    entry = out.getvalue().strip()
    assert entry.startswith("k2026:")
    assert KeyRing.parse(entry).primary_id == "k2026"
