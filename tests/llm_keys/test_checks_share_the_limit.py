"""The admin's "Check now" and `check_llm_keys` take their permits from the same
provider-wide limiter as the workers' checks."""

import io
import time

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from llm_keys import admin as llm_keys_admin
from llm_keys.models import LLMKey
from llm_keys.ratelimit import permit_reserve
from llm_keys.services import Actor, llm_key_set
from tests.factories import UserFactory, WorkspaceFactory, fake_key

PER_MINUTE = 60  # spaced for 90 %: one permit every 1.11 s
INTERVAL = 60 / (PER_MINUTE * 0.9)
NAME = "llm-key-check:anthropic"


@pytest.fixture(autouse=True)
def slow_limit(settings, tmp_path):
    settings.LLM_KEY_CHECK_RATE_LIMIT_URL = f"file://{tmp_path / 'ratelimit'}"
    settings.LLM_KEY_CHECK_RATE_PER_MINUTE = PER_MINUTE


def _keys(n: int) -> list[LLMKey]:
    keys = []
    for i in range(n):
        workspace = WorkspaceFactory(slug=f"ws{i}", name=f"W{i}")
        keys.append(
            llm_key_set(
                workspace=workspace, raw_key=fake_key(), actor=Actor(label="t"), check=False
            )
        )
    return keys


def _probe_times(standin) -> list[float]:
    return sorted(r.at for r in standin.requests if r.path.startswith("/v1/models"))


@pytest.mark.django_db
def test_check_llm_keys_waits_its_turn_at_the_shared_limit(standin):
    _keys(3)
    permit_reserve(NAME)  # a worker's check took the first permit just now
    started = time.monotonic()  # the stand-in records monotonic times
    call_command("check_llm_keys", stdout=io.StringIO())
    times = _probe_times(standin)
    assert len(times) == 3
    assert times[0] - started >= INTERVAL * 0.95
    # The third of three permits after the worker's: three intervals on (a busy machine may
    # send one probe late, so gaps between arrivals vary; the schedule does not).
    assert times[-1] - started >= 3 * INTERVAL * 0.95


@pytest.mark.django_db
class TestAdminCheckNow:
    @pytest.fixture
    def support_client(self):
        user = UserFactory(email="support@example.com", is_staff=True)
        user.groups.add(Group.objects.get(name="Support"))
        client = Client()
        client.force_login(user)
        return client

    def _check_now(self, client, keys):
        return client.post(
            "/admin/llm_keys/llmkey/",
            {"action": "check_now", "_selected_action": [k.pk for k in keys]},
            follow=True,
        )

    def test_the_outsider_and_a_member_cannot_check(self, admin_user, member_client):
        keys = _keys(1)
        response = self._check_now(member_client, keys)
        assert "/admin/login/" in response.redirect_chain[0][0]
        assert _probe_times_none(keys)

    def test_a_near_permit_is_waited_for(self, support_client, standin):
        keys = _keys(1)
        permit_reserve(NAME)
        started = time.monotonic()  # the stand-in records monotonic times
        response = self._check_now(support_client, keys)
        assert response.status_code == 200
        (probe,) = _probe_times(standin)
        assert probe - started >= INTERVAL * 0.95

    def test_a_far_permit_queues_the_check(self, support_client, standin, monkeypatch):
        monkeypatch.setattr(llm_keys_admin, "ADMIN_MAX_WAIT_SECONDS", 0.5)
        keys = _keys(1)
        permit_reserve(NAME)
        started = time.monotonic()  # the stand-in records monotonic times
        response = self._check_now(support_client, keys)
        text = response.content.decode()
        assert "queued. Checks are at the provider-wide limit" in text
        # Eager in tests, the queued check ran at once, after waiting for its permit.
        (probe,) = _probe_times(standin)
        assert probe - started >= INTERVAL * 0.95


def _probe_times_none(keys) -> bool:
    return all(LLMKey.objects.get(pk=k.pk).last_checked_at is None for k in keys)
