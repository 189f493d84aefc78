"""A workspace name is one line; create_workspace runs the password validators and leaves
nothing behind when it refuses; no command error repeats a key typed in the wrong place."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from tests.conftest import SENTINEL_KEY
from workspaces.models import Workspace
from workspaces.services import workspace_create


@pytest.mark.django_db
class TestOneLineNames:
    @pytest.mark.parametrize("name", ["Acme\nBcc: victim@example.com", "Acme\r", "A\r\nB"])
    def test_the_service_refuses_a_line_break(self, name):
        with pytest.raises(ValidationError, match="one line"):
            workspace_create(slug="acme", name=name, admin_email="a@example.com")
        assert not Workspace.objects.exists()

    def test_the_command_refuses_a_line_break(self):
        with pytest.raises(CommandError, match="A workspace name is one line"):
            call_command(
                "create_workspace", "acme", "--name", "Acme\nX", "--admin", "a@example.com"
            )
        assert not Workspace.objects.exists()

    def test_the_database_refuses_a_line_break(self):
        with pytest.raises(IntegrityError), transaction.atomic():
            Workspace.objects.create(slug="raw", name="Raw\nName")

    def test_ends_are_trimmed(self):
        workspace = workspace_create(slug="acme", name="  Acme  ", admin_email="a@example.com")
        assert workspace.name == "Acme"


@pytest.mark.django_db
class TestCreateWorkspacePassword:
    @pytest.mark.parametrize(
        ("password", "message"),
        [
            ("short1", "too short"),
            ("password123", "too common"),
            ("ops@example.com", "too similar"),
        ],
    )
    def test_weak_passwords_are_refused_and_nothing_is_created(
        self, monkeypatch, password, message
    ):
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        with pytest.raises(CommandError, match=message) as caught:
            call_command(
                "create_workspace",
                "beta",
                "--name",
                "Beta",
                "--admin",
                "ops@example.com",
                "--password-stdin",
            )
        assert password not in str(caught.value)
        assert not Workspace.objects.filter(slug="beta").exists()
        from django.contrib.auth import get_user_model

        assert not get_user_model().objects.filter(email="ops@example.com").exists()


@pytest.mark.django_db
class TestNoKeyEchoedByCommands:
    def test_grant_credits_does_not_echo_a_key_as_amount(self, workspace):
        with pytest.raises(CommandError) as caught:
            call_command("grant_credits", "acme", SENTINEL_KEY, "--reason", "x")
        assert "AMOUNT must be a whole number" in str(caught.value)
        assert "looks like an API key" in str(caught.value)
        assert "sk-ant" not in str(caught.value)

    def test_grant_credits_does_not_echo_a_key_as_slug(self, workspace):
        with pytest.raises(CommandError) as caught:
            call_command("grant_credits", SENTINEL_KEY, "100", "--reason", "x")
        assert "No workspace with slug" in str(caught.value)
        assert "sk-ant" not in str(caught.value)

    def test_grant_credits_still_names_a_plain_mistake(self, workspace):
        with pytest.raises(CommandError, match="not 'ten'"):
            call_command("grant_credits", "acme", "ten", "--reason", "x")

    def test_create_workspace_does_not_echo_a_key_as_slug(self, workspace):
        slug = SENTINEL_KEY.lower()
        workspace_create(slug="sk-ant-api03-taken", name="T", admin_email="t@example.com")
        with pytest.raises(CommandError) as caught:
            call_command(
                "create_workspace", "sk-ant-api03-taken", "--name", "X", "--admin", "x@example.com"
            )
        assert "already exists" in str(caught.value)
        assert "sk-ant" not in str(caught.value)
        assert slug
