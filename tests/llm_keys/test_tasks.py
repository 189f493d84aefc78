"""The periodic key checks, run as eager Celery tasks against the stand-in (SPEC §6, §9)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from config.celery import app as celery_app
from llm_keys import tasks
from llm_keys.models import KeyEvent, KeyStatus, LLMKey
from llm_keys.services import Actor, llm_key_set
from tests.conftest import SENTINEL_KEY
from tests.factories import MembershipFactory, WorkspaceFactory, fake_key
from tests.leaks import assert_secret_absent, capture_all_logs

MAX_RETRIES = 2


@pytest.fixture(autouse=True)
def check_settings(settings, tmp_path):
    settings.LLM_KEY_CHECK_RATE_LIMIT_URL = f"file://{tmp_path / 'ratelimit'}"
    settings.LLM_KEY_CHECK_RATE_PER_MINUTE = 6_000_000
    settings.LLM_KEY_CHECK_MAX_RETRIES = MAX_RETRIES
    # Eager retries re-run in place only when eager errors are not re-raised; a result's
    # .get() still raises any real error.
    celery_app.conf.task_eager_propagates = False
    yield settings
    celery_app.conf.task_eager_propagates = True


@pytest.fixture
def run_check(django_capture_on_commit_callbacks):
    """Run one check task eagerly, with its on-commit work (the e-mail) included."""

    def run(llm_key_id: int, **kwargs) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            return tasks.llm_key_check_task.apply(args=(llm_key_id,), kwargs=kwargs).get()

    return run


def _reload(llm_key: LLMKey) -> LLMKey:
    return LLMKey.objects.get(pk=llm_key.pk)


def _probes(standin, raw_key: str) -> int:
    return sum(1 for r in standin.requests if r.api_key == raw_key and r.path.startswith("/v1/"))


class _StatusHandler(BaseHTTPRequestHandler):
    """Answers every request with one HTTP status in Anthropic's error envelope."""

    status = 500

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        body = json.dumps(
            {"type": "error", "error": {"type": "api_error", "message": "status server"}}
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-should-retry", "false")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def status_server():
    servers = []

    def start(status: int) -> str:
        handler = type("Handler", (_StatusHandler,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- §6 classification, through the real SDK and the stand-in -------------------------------


@pytest.mark.parametrize(
    ("behavior", "status", "reason_or_error"),
    [
        ("ok", KeyStatus.VALID, "Accepted by Anthropic"),
        ("ratelimited", KeyStatus.VALID, "rate-limited"),
        ("revoked", KeyStatus.INVALID, "revoked, has expired or is mistyped"),
        ("forbidden", KeyStatus.INVALID, "lacks permission"),
        ("servererror", KeyStatus.VALID, "HTTP 500"),
        ("overloaded", KeyStatus.VALID, "overloaded"),
        ("timeout", KeyStatus.VALID, "did not answer in time"),
    ],
)
def test_check_classifies_provider_answers(
    standin, saved_key, run_check, behavior, status, reason_or_error
):
    standin.set_behavior(saved_key.raw, behavior)

    run_check(saved_key.pk)

    llm_key = _reload(saved_key)
    assert llm_key.status == status
    if behavior in ("servererror", "overloaded", "timeout"):
        assert reason_or_error in llm_key.last_error
        assert llm_key.status_reason == saved_key.status_reason
    else:
        assert reason_or_error in llm_key.status_reason
        assert llm_key.last_error == ""


@pytest.mark.parametrize("http_status", [408, 409, 502, 503, 529])
def test_other_transient_statuses_leave_the_status_and_record_the_error(
    saved_key, run_check, settings, status_server, http_status
):
    settings.ANTHROPIC_BASE_URL = status_server(http_status)

    run_check(saved_key.pk)

    llm_key = _reload(saved_key)
    assert llm_key.status == KeyStatus.VALID
    assert "unavailable" in llm_key.last_error


def test_connection_error_leaves_the_status(saved_key, run_check, settings):
    settings.ANTHROPIC_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens

    run_check(saved_key.pk)

    llm_key = _reload(saved_key)
    assert llm_key.status == KeyStatus.VALID
    assert "Could not connect" in llm_key.last_error


# --- transitions, audit trail and e-mail ----------------------------------------------------


@pytest.mark.parametrize(
    ("before", "behavior", "after", "action", "emails"),
    [
        ("unverified", "ok", "valid", KeyEvent.Action.BECAME_VALID, 0),
        ("valid", "ok", "valid", KeyEvent.Action.CHECKED, 0),
        ("invalid", "ok", "valid", KeyEvent.Action.BECAME_VALID, 0),
        ("unverified", "revoked", "invalid", KeyEvent.Action.BECAME_INVALID, 1),
        ("valid", "revoked", "invalid", KeyEvent.Action.BECAME_INVALID, 1),
        ("invalid", "revoked", "invalid", KeyEvent.Action.CHECKED, 0),
        ("unverified", "overloaded", "unverified", KeyEvent.Action.CHECK_FAILED, 0),
        ("valid", "overloaded", "valid", KeyEvent.Action.CHECK_FAILED, 0),
        ("invalid", "overloaded", "invalid", KeyEvent.Action.CHECK_FAILED, 0),
    ],
)
def test_transition_table(standin, saved_key, run_check, before, behavior, after, action, emails):
    LLMKey.objects.filter(pk=saved_key.pk).update(status=before)
    standin.set_behavior(saved_key.raw, behavior)
    mail.outbox.clear()

    run_check(saved_key.pk)

    assert _reload(saved_key).status == after
    latest = KeyEvent.objects.filter(workspace=saved_key.workspace).first()
    assert latest.action == action
    assert latest.actor_label == "system (periodic check)"
    assert len(mail.outbox) == emails


def test_invalid_key_emails_every_admin_once_and_again_only_after_recovery(
    standin, workspace, saved_key, admin_user, member_user, run_check
):
    second_admin = MembershipFactory(
        workspace=workspace, role="admin", user__email="second-admin@example.com"
    ).user
    standin.set_behavior(saved_key.raw, "revoked")
    mail.outbox.clear()

    for _ in range(3):  # three sweeps find the key revoked
        run_check(saved_key.pk)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == sorted([admin_user.email, second_admin.email])
    assert member_user.email not in message.to
    assert "invalid" in message.subject
    assert f"sk-ant-…{saved_key.hint}" in message.body
    assert "revoked, has expired or is mistyped" in message.body
    assert "http://127.0.0.1:8000/w/acme/settings/llm-key/" in message.body

    standin.set_behavior(saved_key.raw, "ok")
    run_check(saved_key.pk)
    assert _reload(saved_key).status == KeyStatus.VALID
    assert KeyEvent.objects.filter(action=KeyEvent.Action.BECAME_VALID).exists()
    assert len(mail.outbox) == 1

    standin.set_behavior(saved_key.raw, "revoked")
    run_check(saved_key.pk)
    assert len(mail.outbox) == 2


def test_banner_shows_on_workspace_pages_after_a_check_finds_the_key_invalid(
    standin, saved_key, run_check, admin_client, member_client
):
    standin.set_behavior(saved_key.raw, "revoked")
    run_check(saved_key.pk)

    for url in (
        reverse("workspace_home", args=["acme"]),
        reverse("llm_key_settings", args=["acme"]),
    ):
        page = admin_client.get(url).content.decode()
        assert 'data-banner="llm-key-invalid"' in page, url
        assert "Update or remove the key" in page
    member_page = member_client.get(reverse("workspace_home", args=["acme"])).content.decode()
    assert 'data-banner="llm-key-invalid"' in member_page
    assert "Ask a workspace admin" in member_page


# --- idempotency ----------------------------------------------------------------------------


def test_message_delivered_twice_checks_once(standin, saved_key, run_check):
    standin.set_behavior(saved_key.raw, "revoked")
    mail.outbox.clear()
    requested_at = timezone.now().isoformat()

    assert run_check(saved_key.pk, requested_at=requested_at) == "invalid"
    assert run_check(saved_key.pk, requested_at=requested_at) == "already checked"

    assert _probes(standin, saved_key.raw) == 2  # the save, then one check
    assert KeyEvent.objects.filter(action=KeyEvent.Action.BECAME_INVALID).count() == 1
    assert len(mail.outbox) == 1


def test_two_checks_of_a_revoked_key_make_one_transition(standin, saved_key, run_check):
    standin.set_behavior(saved_key.raw, "revoked")
    mail.outbox.clear()

    run_check(saved_key.pk)
    run_check(saved_key.pk)

    assert _probes(standin, saved_key.raw) == 3
    assert KeyEvent.objects.filter(action=KeyEvent.Action.BECAME_INVALID).count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_checks_make_one_transition_on_postgres(
    on_postgres, standin, check_settings
):
    workspace = WorkspaceFactory(slug="concurrent")
    MembershipFactory(workspace=workspace, role="admin")
    raw = fake_key()
    llm_key = llm_key_set(workspace=workspace, raw_key=raw, actor=Actor(label="test"))
    standin.set_behavior(raw, "revoked")
    standin.state.latency = 0.2  # both checks are in flight at once
    mail.outbox.clear()
    outcomes = []

    def check():
        try:
            result = tasks.llm_key_check_task.apply(args=(llm_key.pk,))
            # Celery's "result.get() within a task" guard is process-wide: while the other
            # thread's eager task runs, it would refuse this thread's get().
            outcomes.append(result.get(disable_sync_subtasks=False))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert outcomes == ["invalid", "invalid"]
    assert KeyEvent.objects.filter(action=KeyEvent.Action.BECAME_INVALID).count() == 1
    assert len(mail.outbox) == 1


# --- retries --------------------------------------------------------------------------------


def test_transient_failures_are_retried_a_bounded_number_of_times(
    standin, saved_key, run_check, monkeypatch, settings
):
    countdowns = []
    real_countdown = tasks.retry_countdown

    def spy(retries: int) -> float:
        countdowns.append(real_countdown(retries))
        return countdowns[-1]

    monkeypatch.setattr(tasks, "retry_countdown", spy)
    standin.set_behavior(saved_key.raw, "overloaded")

    assert run_check(saved_key.pk) == "unknown"

    assert _probes(standin, saved_key.raw) == 1 + (1 + MAX_RETRIES)
    assert len(countdowns) == MAX_RETRIES
    assert all(0 < c < settings.CELERY_BROKER_VISIBILITY_TIMEOUT for c in countdowns)
    assert _reload(saved_key).status == KeyStatus.VALID
    failed = KeyEvent.objects.filter(action=KeyEvent.Action.CHECK_FAILED).count()
    assert failed == 1 + MAX_RETRIES


def test_a_retry_after_a_failed_try_is_not_mistaken_for_a_duplicate(standin, saved_key, run_check):
    requested_at = timezone.now().isoformat()
    standin.set_behavior(saved_key.raw, "overloaded")
    run_check(saved_key.pk, requested_at=requested_at)
    standin.set_behavior(saved_key.raw, "revoked")

    run_check(saved_key.pk, requested_at=requested_at)

    assert _reload(saved_key).status == KeyStatus.INVALID


@pytest.mark.parametrize("backoff_max", [60, 900, 10**6])
def test_retry_countdowns_grow_are_capped_and_stay_below_the_visibility_timeout(
    settings, backoff_max
):
    settings.CELERY_BROKER_VISIBILITY_TIMEOUT = 3600
    settings.LLM_KEY_CHECK_RETRY_BACKOFF_SECONDS = 30
    settings.LLM_KEY_CHECK_RETRY_BACKOFF_MAX_SECONDS = backoff_max
    cap = min(backoff_max, 3600 * 0.9)
    for retries in range(12):
        ceiling = min(cap, 30 * 2**retries)
        samples = [tasks.retry_countdown(retries) for _ in range(300)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert all(s < settings.CELERY_BROKER_VISIBILITY_TIMEOUT for s in samples)
        assert len({round(s, 6) for s in samples}) > 1, "no jitter"


# --- undecryptable keys ---------------------------------------------------------------------


def test_undecryptable_key_keeps_its_status_is_logged_and_not_retried(
    standin, saved_key, run_check, caplog
):
    LLMKey.objects.filter(pk=saved_key.pk).update(ciphertext=b"\x00" * 40)
    before = len(standin.requests)

    assert run_check(saved_key.pk) == "unreadable"

    assert len(standin.requests) == before
    assert _reload(saved_key).status == KeyStatus.VALID
    assert KeyEvent.objects.filter(action=KeyEvent.Action.DECRYPT_FAILED).count() == 1
    assert any(
        "cannot be decrypted" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records
    )


def test_a_check_makes_a_constant_number_of_queries(
    standin, saved_key, run_check, django_assert_max_num_queries
):
    # The sweep runs one check per stored key: a column loaded lazily or an extra read per
    # check would multiply its database work. Read the key; then lock it, save the verdict
    # and write its audit event (with the savepoint around them).
    with django_assert_max_num_queries(6):
        assert run_check(saved_key.pk) == "valid"

    assert KeyEvent.objects.filter(action=KeyEvent.Action.CHECKED).count() == 1
    assert LLMKey.objects.get(pk=saved_key.pk).last_checked_at > saved_key.last_checked_at


def test_check_of_a_removed_key_does_nothing(standin, saved_key, run_check):
    pk = saved_key.pk
    saved_key.delete()
    before = len(standin.requests)

    assert run_check(pk) == "removed"
    assert len(standin.requests) == before


# --- messages carry ids only ----------------------------------------------------------------


@pytest.fixture
def published_messages():
    """Publish to the in-memory broker instead of running eagerly; return the raw bodies."""
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_read() as conn:
        queue = conn.SimpleQueue("celery")
        queue.clear()

        def drain() -> list:
            bodies = []
            while True:
                try:
                    message = queue.get(block=False)
                except queue.Empty:
                    return bodies
                bodies.append((message.headers, message.body))
                message.ack()

        try:
            yield drain
        finally:
            celery_app.conf.task_always_eager = True
            queue.clear()
            queue.close()


def test_sweep_fans_out_one_message_per_key_carrying_ids_only(
    standin, workspace, admin_user, published_messages
):
    keys = [llm_key_set(workspace=workspace, raw_key=SENTINEL_KEY, actor=Actor(user=admin_user))]
    for n in range(3):
        other = WorkspaceFactory(slug=f"sweep-{n}")
        keys.append(llm_key_set(workspace=other, raw_key=fake_key(), actor=Actor(label="t")))

    with capture_all_logs() as records:
        assert tasks.llm_keys_check_all() == 4
        messages = published_messages()

    assert len(messages) == 4
    assert {headers["task"] for headers, _ in messages} == {"llm_keys.tasks.llm_key_check"}
    ids = set()
    for _, body in messages:
        assert isinstance(body, str | bytes)
        args, kwargs, _embed = json.loads(body)
        assert len(args) == 1 and isinstance(args[0], int)
        assert set(kwargs) == {"requested_at"}
        ids.add(args[0])
    assert ids == {k.pk for k in keys}
    assert_secret_absent(
        SENTINEL_KEY, records=records, texts=[str(m) for m in messages], check_db=False
    )


def test_invalid_key_notice_is_queued_with_the_key_id_only(
    standin, workspace, admin_user, published_messages, django_capture_on_commit_callbacks
):
    llm_key = llm_key_set(workspace=workspace, raw_key=SENTINEL_KEY, actor=Actor(user=admin_user))
    standin.set_behavior(SENTINEL_KEY, "revoked")

    with django_capture_on_commit_callbacks(execute=True):
        tasks.llm_key_check_task.run(llm_key.pk)
    messages = published_messages()

    assert [h["task"] for h, _ in messages] == ["llm_keys.tasks.llm_key_invalid_notify"]
    args, kwargs, _ = json.loads(messages[0][1])
    assert args == [llm_key.pk] and kwargs == {}
    assert SENTINEL_KEY not in str(messages)


def test_no_key_in_logs_results_emails_or_rows_of_a_sweep(
    standin, workspace, admin_user, django_capture_on_commit_callbacks
):
    llm_key = llm_key_set(workspace=workspace, raw_key=SENTINEL_KEY, actor=Actor(user=admin_user))
    standin.set_behavior(SENTINEL_KEY, "revoked")
    mail.outbox.clear()

    with capture_all_logs() as records, django_capture_on_commit_callbacks(execute=True):
        swept = tasks.llm_keys_check_all()
        result = tasks.llm_key_check_task.apply(args=(llm_key.pk,)).get()

    assert swept == 1 and result == "invalid"
    assert _reload(llm_key).status == KeyStatus.INVALID
    assert len(mail.outbox) == 1
    assert SENTINEL_KEY in standin.keys_seen()  # the key did reach the provider, and only it
    assert_secret_absent(SENTINEL_KEY, records=records, texts=[str(swept), str(result)])
