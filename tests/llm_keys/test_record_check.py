"""Applying a check's verdict to a stored key (``llm_key_record_check``), on SQLite and on
PostgreSQL, where it is one statement."""

import pytest
from django.core import mail

from llm_keys.models import KeyEvent, KeyStatus, LLMKey
from llm_keys.services import Actor, llm_key_record_check, llm_key_remove, llm_key_set
from providers import CheckOutcome, CheckResult
from tests.factories import fake_key

CHECK_EVENTS = (
    KeyEvent.Action.CHECKED,
    KeyEvent.Action.CHECK_FAILED,
    KeyEvent.Action.BECAME_VALID,
    KeyEvent.Action.BECAME_INVALID,
)


@pytest.fixture
def record(django_capture_on_commit_callbacks):
    """Record a verdict with its on-commit work (the e-mail) included."""

    def run(llm_key: LLMKey, outcome: str, reason: str, actor: Actor) -> LLMKey | None:
        with django_capture_on_commit_callbacks(execute=True):
            return llm_key_record_check(
                llm_key=llm_key, result=CheckResult(outcome, reason=reason), actor=actor
            )

    return run


def test_a_verdict_writes_the_row_and_one_audit_event(saved_key, admin_user, record):
    LLMKey.objects.filter(pk=saved_key.pk).update(status=KeyStatus.INVALID, last_error="old")
    mail.outbox.clear()

    returned = record(
        LLMKey.objects.get(), CheckOutcome.VALID, "Accepted by Anthropic.", Actor(user=admin_user)
    )

    stored = LLMKey.objects.get()
    assert (returned.pk, returned.status, returned.hint) == (stored.pk, "valid", stored.hint)
    assert stored.status == KeyStatus.VALID
    assert stored.status_reason == "Accepted by Anthropic."
    assert stored.last_error == ""
    assert stored.last_verified_at == stored.last_checked_at
    # A check changes the key's status, not the key: "Last changed" keeps the save's time.
    assert stored.updated_at == saved_key.updated_at
    event = KeyEvent.objects.filter(action__in=CHECK_EVENTS).get()
    assert event.action == KeyEvent.Action.BECAME_VALID
    assert event.detail == "invalid → valid: Accepted by Anthropic."
    assert event.actor == admin_user and event.hint == saved_key.hint
    assert event.workspace_id == saved_key.workspace_id and event.provider == "anthropic"
    assert mail.outbox == []


def test_no_verdict_records_the_error_and_keeps_status_reason_and_verification(saved_key, record):
    before = LLMKey.objects.get()
    reason = "Anthropic is unavailable (overloaded); try again later. " * 10

    record(before, CheckOutcome.UNKNOWN, reason, Actor(label="system (periodic check)"))

    stored = LLMKey.objects.get()
    assert stored.status == KeyStatus.VALID
    assert stored.status_reason == before.status_reason
    assert stored.last_verified_at == before.last_verified_at
    assert stored.last_checked_at > before.last_checked_at
    assert stored.last_error == reason[:300]
    event = KeyEvent.objects.filter(action__in=CHECK_EVENTS).get()
    assert event.action == KeyEvent.Action.CHECK_FAILED
    assert event.detail == f"valid → valid: {reason}"[:300]
    assert event.actor is None and event.actor_label == "system (periodic check)"


@pytest.mark.parametrize("before", [KeyStatus.VALID, KeyStatus.UNVERIFIED])
def test_turning_invalid_emails_the_admins_once(saved_key, admin_user, record, before):
    LLMKey.objects.filter(pk=saved_key.pk).update(status=before)
    mail.outbox.clear()
    actor = Actor(label="test")

    for _ in range(2):
        record(LLMKey.objects.get(), CheckOutcome.INVALID, "Rejected by Anthropic.", actor)

    stored = LLMKey.objects.get()
    assert stored.status == KeyStatus.INVALID
    assert stored.status_reason == "Rejected by Anthropic."
    actions = list(
        KeyEvent.objects.filter(action__in=CHECK_EVENTS)
        .order_by("id")
        .values_list("action", "detail")
    )
    assert actions == [
        ("became_invalid", f"{before} → invalid: Rejected by Anthropic."),
        ("checked", "invalid → invalid: Rejected by Anthropic."),
    ]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [admin_user.email]


def test_a_verdict_about_a_key_replaced_meanwhile_is_dropped(
    saved_key, workspace, admin_user, record
):
    checked = LLMKey.objects.get()  # the check read this key...
    llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user))
    replaced = LLMKey.objects.get()  # ...and an admin saved another one meanwhile
    mail.outbox.clear()

    assert record(checked, CheckOutcome.INVALID, "Rejected.", Actor(label="test")) is None

    stored = LLMKey.objects.get()
    assert stored.status == KeyStatus.VALID
    assert stored.last_checked_at == replaced.last_checked_at
    assert not KeyEvent.objects.filter(action__in=CHECK_EVENTS).exists()
    assert mail.outbox == []


def test_a_verdict_about_a_key_removed_meanwhile_is_dropped(
    saved_key, workspace, admin_user, record
):
    checked = LLMKey.objects.get()
    llm_key_remove(workspace=workspace, actor=Actor(user=admin_user))
    mail.outbox.clear()

    assert record(checked, CheckOutcome.INVALID, "Rejected.", Actor(label="test")) is None

    assert not LLMKey.objects.exists()
    assert not KeyEvent.objects.filter(action__in=CHECK_EVENTS).exists()
    assert mail.outbox == []
