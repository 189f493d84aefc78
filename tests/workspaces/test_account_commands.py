"""add_member and create_support_user: the password validators run, errors are one line
with a non-zero exit, nothing is half-written, and no password is ever printed."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from workspaces.models import Membership

GOOD_PASSWORD = "plum-orbit-kettle-7391"
User = get_user_model()


def run(name, *args, stdin_text=None, monkeypatch=None):
    out = io.StringIO()
    if stdin_text is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin_text))
    call_command(name, *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.mark.django_db
class TestAddMember:
    def test_unknown_workspace_is_refused_and_nothing_is_created(self, monkeypatch):
        with pytest.raises(CommandError, match="no workspace with the slug 'nowhere'"):
            run(
                "add_member",
                "nowhere",
                "new@example.com",
                "--role",
                "member",
                "--password-stdin",
                stdin_text=GOOD_PASSWORD + "\n",
                monkeypatch=monkeypatch,
            )
        assert not User.objects.filter(email="new@example.com").exists()

    def test_a_weak_password_is_refused_with_the_validators_reason(self, workspace, monkeypatch):
        with pytest.raises(CommandError) as excinfo:
            run(
                "add_member",
                "acme",
                "new@example.com",
                "--role",
                "admin",
                "--password-stdin",
                stdin_text="password\n",
                monkeypatch=monkeypatch,
            )
        message = str(excinfo.value)
        assert "too common" in message
        assert "\n" not in message
        assert "password\n" not in message and "'password'" not in message
        assert not User.objects.filter(email="new@example.com").exists()

    def test_a_new_member_can_log_in_and_the_password_is_not_printed(
        self, workspace, monkeypatch, client
    ):
        out = run(
            "add_member",
            "acme",
            " New@Example.com ",
            "--role",
            "member",
            "--password-stdin",
            stdin_text=GOOD_PASSWORD + "\n",
            monkeypatch=monkeypatch,
        )
        assert GOOD_PASSWORD not in out
        assert "new@example.com (new account) is now member of 'acme'" in out
        membership = Membership.objects.get(workspace=workspace, user__email="new@example.com")
        assert membership.role == "member"
        assert (
            client.post(
                "/login/", {"username": "new@example.com", "password": GOOD_PASSWORD}
            ).status_code
            == 302
        )

    def test_an_existing_member_changes_role_and_keeps_their_password(
        self, workspace, member_user, monkeypatch, login_password, client
    ):
        out = run("add_member", "acme", member_user.email, "--role", "admin")
        assert "(existing account) is now admin" in out
        assert Membership.objects.get(user=member_user).role == "admin"
        with pytest.raises(CommandError, match="already has an account with a password"):
            run(
                "add_member",
                "acme",
                member_user.email,
                "--role",
                "admin",
                "--password-stdin",
                stdin_text=GOOD_PASSWORD + "\n",
                monkeypatch=monkeypatch,
            )
        assert (
            client.post(
                "/login/", {"username": member_user.email, "password": login_password}
            ).status_code
            == 302
        )

    def test_a_bad_role_and_a_bad_email_are_refused(self, workspace, monkeypatch):
        with pytest.raises(CommandError, match="invalid choice: 'owner'"):
            run("add_member", "acme", "x@example.com", "--role", "owner")
        with pytest.raises(CommandError, match="not an e-mail address"):
            run("add_member", "acme", "not-an-email", "--role", "member")
        with pytest.raises(CommandError, match="standard input was empty"):
            run(
                "add_member",
                "acme",
                "x@example.com",
                "--role",
                "member",
                "--password-stdin",
                stdin_text="",
                monkeypatch=monkeypatch,
            )
        assert not User.objects.filter(email="x@example.com").exists()


@pytest.mark.django_db
class TestCreateSupportUser:
    def test_creates_a_staff_account_in_the_support_group(self, monkeypatch, client):
        out = run(
            "create_support_user",
            "help@example.com",
            "--password-stdin",
            stdin_text=GOOD_PASSWORD + "\n",
            monkeypatch=monkeypatch,
        )
        assert GOOD_PASSWORD not in out
        assert "Created the support account help@example.com" in out
        user = User.objects.get(email="help@example.com")
        assert user.is_staff and not user.is_superuser
        assert list(user.groups.values_list("name", flat=True)) == ["Support"]
        assert (
            client.post(
                "/login/", {"username": "help@example.com", "password": GOOD_PASSWORD}
            ).status_code
            == 302
        )
        assert client.get("/admin/").status_code == 200

    def test_a_password_like_the_email_is_refused(self, monkeypatch):
        with pytest.raises(CommandError, match="too similar"):
            run(
                "create_support_user",
                "helpdesk.person@example.com",
                "--password-stdin",
                stdin_text="helpdesk.person\n",
                monkeypatch=monkeypatch,
            )
        assert not User.objects.filter(email="helpdesk.person@example.com").exists()

    def test_an_existing_account_gets_support_access(self, member_user):
        out = run("create_support_user", member_user.email)
        assert "Gave support access to" in out
        member_user.refresh_from_db()
        assert member_user.is_staff
        assert member_user.groups.filter(name="Support").exists()

    def test_without_the_support_group_it_says_to_migrate(self):
        Group.objects.filter(name="Support").delete()
        with pytest.raises(CommandError, match=r"run 'manage\.py migrate' first"):
            run("create_support_user", "help@example.com")
        assert not User.objects.filter(email="help@example.com").exists()


@pytest.mark.django_db
def test_demo_setup_grants_the_starting_credits_once(tmp_path, settings):
    from credits.models import CreditEntry
    from credits.selectors import credits_balance
    from workspaces.models import Workspace

    settings.BASE_DIR = tmp_path
    first = run("demo_setup")
    second = run("demo_setup")
    workspace = Workspace.objects.get(slug="demo")
    # 10 % of the 100,000 allowance, plus 10,000 for the tour above it.
    assert settings.AI_CREDITS_MONTHLY_ALLOWANCE == 100_000
    assert credits_balance(workspace=workspace) == 20_000
    grant = CreditEntry.objects.get(workspace=workspace)
    assert "starting credits" in grant.reason
    assert "Starting credits: 20,000" in first and "Starting credits: 20,000" in second
    login = (tmp_path / "var" / "demo-login.txt").read_text()
    password = login.split("password:")[1].split()[0]
    assert password in second
    assert (tmp_path / "var" / "demo-login.txt").stat().st_mode & 0o077 == 0
