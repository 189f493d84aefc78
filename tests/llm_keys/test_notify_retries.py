"""The invalid-key e-mail is retried when the mail server fails for now (timeout, refused),
and sent once."""

import pytest
from django.core import mail

from llm_keys import tasks
from llm_keys.models import KeyStatus
from tests.llm_keys import flaky_mail


@pytest.fixture
def flaky(settings):
    listener = flaky_mail.silent_listener()
    backend = flaky_mail.FlakyBackend
    backend.attempts = 0
    backend.silent_port = listener.getsockname()[1]
    backend.closed_port = flaky_mail.closed_port()
    settings.EMAIL_BACKEND = "tests.llm_keys.flaky_mail.FlakyBackend"
    yield backend
    listener.close()


@pytest.mark.django_db
def test_a_timeout_then_a_refused_connection_are_retried_and_the_mail_goes_once(
    saved_key, flaky, monkeypatch
):
    saved_key.status = KeyStatus.INVALID
    saved_key.status_reason = "Rejected by Anthropic."
    saved_key.save()
    flaky.failures = 2
    mail.outbox.clear()
    # Eager, each retry runs at once (its countdown skipped) and ends in a Retry state.
    monkeypatch.setitem(tasks.llm_key_invalid_notify.app.conf, "task_eager_propagates", False)
    tasks.llm_key_invalid_notify.apply(args=(saved_key.pk,), throw=False)
    assert flaky.attempts == 3
    assert len(mail.outbox) == 1
    assert "invalid" in mail.outbox[0].subject


@pytest.mark.django_db
def test_a_name_with_a_line_break_cannot_reach_the_subject(saved_key):
    # The model refuses it (tests/workspaces/test_smaller_holes.py); the database too, so no
    # row can carry one into the e-mail's subject.
    from django.db import IntegrityError, transaction

    workspace = saved_key.workspace
    with pytest.raises(IntegrityError), transaction.atomic():
        type(workspace).objects.filter(pk=workspace.pk).update(name="A\nBcc: x@example.com")
