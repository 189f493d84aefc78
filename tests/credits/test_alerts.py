"""Balance alerts: admins are e-mailed once per crossing (low, then empty), again only after
credits were added back above the threshold; the pages show the same state."""

import smtplib

import pytest
from django.core import mail

from credits.models import AlertState, CreditAlert
from credits.selectors import credits_alert_state
from credits.services import (
    credits_adjust,
    credits_alert_email_send,
    credits_grant,
    credits_hold,
    credits_release,
    credits_settle,
)
from credits.tasks import credits_alert_email
from llm_keys.services import Actor, llm_key_set
from tests.factories import MembershipFactory, WorkspaceFactory, fake_key

from .threads import run_in_threads


@pytest.fixture
def alerting(settings):
    """Allowance 1,000 and 10 %: low under 100 credits."""
    settings.AI_CREDITS_MONTHLY_ALLOWANCE = 1_000
    settings.AI_CREDITS_LOW_BALANCE_PERCENT = 10


def spend(workspace, amount: int, key: str) -> None:
    hold = credits_hold(workspace=workspace, amount=amount, idempotency_key=key)
    credits_settle(hold=hold, amount=amount)


def alert_mails() -> list:
    return [m for m in mail.outbox if "AI credits" in m.subject]


@pytest.mark.django_db(transaction=True)
def test_one_email_when_low_none_while_low_one_at_zero(
    alerting, workspace, admin_user, member_user
):
    credits_grant(workspace=workspace, amount=150, reason="Test")
    spend(workspace, 40, "a")  # 110: above the threshold
    assert alert_mails() == []

    spend(workspace, 20, "b")  # 90: below 10 % of 1,000
    [low] = alert_mails()
    assert low.to == ["admin@example.com"]  # admins only
    assert "running low" in low.subject and "90 credits left" in low.body
    assert "LLM Key" in low.body  # says what to do
    assert credits_alert_state(workspace=workspace).state == AlertState.LOW

    spend(workspace, 30, "c")  # 60: still low, no second e-mail
    hold = credits_hold(workspace=workspace, amount=50, idempotency_key="d")
    credits_release(hold=hold)
    assert len(alert_mails()) == 1

    spend(workspace, 60, "e")  # 0
    _low, empty = alert_mails()
    assert "used up" in empty.subject
    assert credits_alert_state(workspace=workspace).state == AlertState.EMPTY
    assert CreditAlert.objects.filter(emailed_at__isnull=False).count() == 2


@pytest.mark.django_db(transaction=True)
def test_again_only_after_a_recovery_and_a_new_crossing(alerting, workspace, admin_user):
    credits_grant(workspace=workspace, amount=150, reason="Test")
    spend(workspace, 60, "a")  # 90: low
    credits_grant(workspace=workspace, amount=5, reason="Small top-up")  # 95: still low
    spend(workspace, 1, "b")
    assert len(alert_mails()) == 1

    credits_grant(workspace=workspace, amount=500, reason="Top-up")  # 594: recovered
    assert credits_alert_state(workspace=workspace).state == AlertState.OK
    assert len(alert_mails()) == 1
    spend(workspace, 500, "c")  # 94: a new crossing
    assert len(alert_mails()) == 2
    assert credits_alert_state(workspace=workspace).state == AlertState.LOW


@pytest.mark.django_db(transaction=True)
def test_a_negative_adjustment_can_cross_too(alerting, workspace, admin_user):
    credits_grant(workspace=workspace, amount=500, reason="Test")
    credits_adjust(workspace=workspace, amount=-500, reason="Duplicate grant")
    [empty] = alert_mails()
    assert "used up" in empty.subject


@pytest.mark.django_db(transaction=True)
def test_a_transient_smtp_error_is_retried_and_sends_once(
    alerting, workspace, admin_user, monkeypatch
):
    from credits.services import alerts as services

    real_send = services.send_mail
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise smtplib.SMTPServerDisconnected("connection lost")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(services, "send_mail", flaky)
    credits_grant(workspace=workspace, amount=150, reason="Test")
    spend(workspace, 60, "a")  # the crossing commits; its e-mail task fails once
    alert = CreditAlert.objects.get()
    assert len(calls) == 1 and alert_mails() == [] and alert.emailed_at is None
    assert smtplib.SMTPException in credits_alert_email.autoretry_for

    retried = credits_alert_email.apply(args=[alert.pk], throw=False)  # the retry
    assert retried.successful()
    assert len(alert_mails()) == 1
    alert.refresh_from_db()
    assert alert.emailed_at is not None and alert.recipients == 1
    # A duplicate delivery of the task (acks-late, a worker lost) sends nothing more.
    credits_alert_email.apply(args=[alert.pk], throw=False)
    assert credits_alert_email_send(alert_id=alert.pk) is False
    assert len(calls) == 2 and len(alert_mails()) == 1


@pytest.mark.django_db(transaction=True)
def test_the_settings_and_usage_pages_show_the_alert_banner(
    alerting, admin_client, workspace, admin_user
):
    for url in ("/w/acme/settings/llm-key/", "/w/acme/usage/"):
        assert 'data-credits-alert="' not in admin_client.get(url).content.decode()
    credits_grant(workspace=workspace, amount=150, reason="Test")
    spend(workspace, 60, "a")
    for url in ("/w/acme/settings/llm-key/", "/w/acme/usage/"):
        html = admin_client.get(url).content.decode()
        assert 'data-credits-alert="low"' in html, url
        assert "running low" in html
    spend(workspace, 90, "b")
    html = admin_client.get("/w/acme/usage/").content.decode()
    assert 'data-credits-alert="empty"' in html and "used up" in html


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_crossing_the_threshold_send_one_email(on_postgres, alerting):
    workspace = WorkspaceFactory(name="Race", slug="race")
    MembershipFactory(workspace=workspace, role="admin", user__email="race-admin@example.com")
    MembershipFactory(workspace=workspace, role="member")
    credits_grant(workspace=workspace, amount=300, reason="Test")

    results = run_in_threads(20, lambda i: spend(workspace, 10, f"req-{i}"))  # 300 → 100
    assert not [r for r in results if isinstance(r, Exception)], results
    assert alert_mails() == []  # 100 is not below 100
    results = run_in_threads(20, lambda i: spend(workspace, 5, f"more-{i}"))  # 100 → 0
    assert not [r for r in results if isinstance(r, Exception)], results

    subjects = sorted(m.subject for m in alert_mails())
    assert len(subjects) == 2, subjects  # one "low" and one "used up", never more
    assert any("running low" in s for s in subjects) and any("used up" in s for s in subjects)
    assert all(m.to == ["race-admin@example.com"] for m in alert_mails())
    assert CreditAlert.objects.filter(workspace=workspace).count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_banner_advises_saving_a_key_only_to_admins_of_a_workspace_without_one(
    alerting, admin_client, member_client, workspace, admin_user
):
    credits_grant(workspace=workspace, amount=150, reason="Test")
    spend(workspace, 60, "a")
    html = admin_client.get("/w/acme/usage/").content.decode()
    assert "save the workspace's own Anthropic key in" in html
    html = member_client.get("/w/acme/usage/").content.decode()
    assert 'data-credits-alert="low"' in html
    assert "save the workspace's own Anthropic key in" not in html
    assert "ask a workspace admin" in html

    llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user))
    for client in (admin_client, member_client):
        html = client.get("/w/acme/usage/").content.decode()
        assert 'data-credits-alert="low"' in html
        assert "save the workspace's own Anthropic key in" not in html
        assert "use the workspace's own Anthropic key" in html


@pytest.mark.django_db(transaction=True)
def test_the_demos_first_prompts_send_no_alert_and_show_no_banner(tmp_path, settings):
    from django.core.management import call_command
    from django.test import Client

    from workspaces.models import Workspace

    settings.BASE_DIR = tmp_path
    call_command("demo_setup", stdout=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
    workspace = Workspace.objects.get(slug="demo")
    for n in range(20):  # twenty prompts of the tour, a generous 100 credits each
        spend(workspace, 100, f"tour-{n}")
    assert alert_mails() == []
    assert credits_alert_state(workspace=workspace).state == AlertState.OK
    client = Client()
    client.force_login(workspace.memberships.get().user)
    assert 'data-credits-alert="' not in client.get("/w/demo/usage/").content.decode()
