"""A key saved while Anthropic could not be reached is checked again within minutes (a
queued check with a countdown, whose retries back off), and the page says by when."""

import datetime

import pytest
from django.utils import timezone

from llm_keys.models import KeyStatus
from llm_keys.selectors import llm_key_next_check_by
from llm_keys.services import Actor, llm_key_set
from llm_keys.tasks import llm_key_check_task
from tests.factories import fake_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(monkeypatch, settings):
    """Re-checks on (tests run tasks eagerly, where a countdown cannot wait): what is queued."""
    settings.LLM_KEY_RECHECK_UNVERIFIED_AFTER_SECONDS = 60
    calls = []
    monkeypatch.setattr(
        llm_key_check_task, "apply_async", lambda *args, **kwargs: calls.append(kwargs)
    )
    return calls


def test_a_key_saved_unverified_is_queued_for_a_check_within_minutes(
    queued, workspace, admin_user, standin
):
    raw = fake_key("overloaded")  # the stand-in answers 529 to this key's check
    llm_key = llm_key_set(workspace=workspace, raw_key=raw, actor=Actor(user=admin_user))
    assert llm_key.status == KeyStatus.UNVERIFIED
    assert len(queued) == 1
    assert queued[0]["args"] == (llm_key.pk,) and queued[0]["countdown"] == 60

    due = llm_key_next_check_by(llm_key)
    assert due - timezone.now() < datetime.timedelta(minutes=20)


def test_a_verified_key_queues_nothing_and_is_next_checked_by_the_sweep(
    queued, workspace, admin_user, settings
):
    llm_key = llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user))
    assert llm_key.status == KeyStatus.VALID and queued == []
    due = llm_key_next_check_by(llm_key)
    assert due - llm_key.last_checked_at == datetime.timedelta(
        minutes=settings.LLM_KEY_CHECK_INTERVAL_MINUTES
    )


def test_the_settings_page_says_the_check_is_minutes_away(
    queued, admin_client, workspace, admin_user, standin
):
    response = admin_client.post(
        "/w/acme/settings/llm-key/",
        {"provider": "anthropic", "api_key": fake_key("overloaded")},
        follow=True,
    )
    html = response.content.decode()
    assert "within a few minutes" in html
    assert "in 6 hours" not in html and "in 5 hours" not in html
