import threading

import pytest
from django.db import connection, transaction

from llm_keys import rotation
from llm_keys.crypto import generate_entry
from llm_keys.models import KeyEvent, LLMKey
from llm_keys.services import Actor, llm_key_decrypt, llm_key_set
from tests.conftest import SENTINEL_KEY
from tests.factories import WorkspaceFactory, fake_key

OLD = generate_entry("old")
NEW = generate_entry("new")


@pytest.fixture
def old_rows(db, settings):
    """Seven keys written under the key "old"; then the ring becomes "new,old"."""
    settings.LLM_KEY_ENCRYPTION_KEYS = OLD
    plaintexts = {}
    for index in range(7):
        raw = SENTINEL_KEY if index == 3 else fake_key()
        workspace = WorkspaceFactory(slug=f"ws-{index}")
        llm_key = llm_key_set(workspace=workspace, raw_key=raw, actor=Actor(label="t"), check=False)
        plaintexts[llm_key.pk] = raw
    settings.LLM_KEY_ENCRYPTION_KEYS = f"{NEW},{OLD}"
    return plaintexts


def key_ids() -> dict[str, int]:
    return {
        key_id: LLMKey.objects.filter(encryption_key_id=key_id).count()
        for key_id in LLMKey.objects.values_list("encryption_key_id", flat=True).distinct()
    }


def assert_all_decrypt(plaintexts):
    for llm_key in LLMKey.objects.all():
        assert llm_key_decrypt(llm_key) == plaintexts[llm_key.pk]


def test_rewrites_every_row_under_the_primary(run_command, old_rows):
    outcome = run_command("rotate_encryption_keys", "--batch-size", "3")
    assert outcome.error is None
    assert (
        "Primary key id 'new'. 7 stored keys, 7 under another key id ('old': 7)." in outcome.stdout
    )
    assert "Re-encrypted 7 keys in 3 batches" in outcome.stdout
    assert "0 changed meanwhile" in outcome.stdout and "0 unreadable" in outcome.stdout
    assert key_ids() == {"new": 7}
    assert_all_decrypt(old_rows)
    events = KeyEvent.objects.filter(action=KeyEvent.Action.REENCRYPTED)
    assert events.count() == 7
    assert {e.actor_label for e in events} == {"operator (rotate_encryption_keys)"}
    assert SENTINEL_KEY not in outcome.text


def test_a_second_run_rewrites_nothing(run_command, old_rows):
    run_command("rotate_encryption_keys")
    before = {pk: bytes(ct) for pk, ct in LLMKey.objects.values_list("pk", "ciphertext")}
    events = KeyEvent.objects.count()
    outcome = run_command("rotate_encryption_keys")
    assert outcome.error is None
    assert "Re-encrypted 0 keys in 0 batches" in outcome.stdout
    assert {pk: bytes(ct) for pk, ct in LLMKey.objects.values_list("pk", "ciphertext")} == before
    assert KeyEvent.objects.count() == events


def test_dry_run_writes_nothing(run_command, old_rows):
    outcome = run_command("rotate_encryption_keys", "--dry-run", "--batch-size", "2")
    assert "Would re-encrypt 7 keys in 4 batches" in outcome.stdout
    assert key_ids() == {"old": 7}
    assert not KeyEvent.objects.filter(action=KeyEvent.Action.REENCRYPTED).exists()


class Killed(Exception):
    pass


def test_a_run_killed_between_batches_is_finished_by_a_rerun(run_command, old_rows, monkeypatch):
    real = rotation.llm_keys_reencrypt_batch
    calls = []

    def dies_after_two_batches(**kwargs):
        if len(calls) == 2:
            raise Killed
        calls.append(1)
        return real(**kwargs)

    monkeypatch.setattr(rotation, "llm_keys_reencrypt_batch", dies_after_two_batches)
    with pytest.raises(Killed):
        run_command("rotate_encryption_keys", "--batch-size", "3")
    assert key_ids() == {"new": 6, "old": 1}
    assert_all_decrypt(old_rows)
    monkeypatch.setattr(rotation, "llm_keys_reencrypt_batch", real)
    outcome = run_command("rotate_encryption_keys", "--batch-size", "3")
    assert "Re-encrypted 1 keys in 1 batches" in outcome.stdout
    assert key_ids() == {"new": 7}
    assert_all_decrypt(old_rows)


def test_a_run_killed_inside_a_batch_leaves_that_batch_as_it_was(
    run_command, old_rows, monkeypatch
):
    real = rotation._record_events
    calls = []

    def dies_in_the_second_batch(rewrites):
        calls.append(1)
        real(rewrites)
        if len(calls) == 2:
            raise Killed  # after the batch's updates, before its commit

    monkeypatch.setattr(rotation, "_record_events", dies_in_the_second_batch)
    with pytest.raises(Killed):
        run_command("rotate_encryption_keys", "--batch-size", "3")
    assert key_ids() == {"new": 3, "old": 4}
    assert KeyEvent.objects.filter(action=KeyEvent.Action.REENCRYPTED).count() == 3
    assert_all_decrypt(old_rows)
    monkeypatch.setattr(rotation, "_record_events", real)
    run_command("rotate_encryption_keys", "--batch-size", "3")
    assert key_ids() == {"new": 7}
    assert KeyEvent.objects.filter(action=KeyEvent.Action.REENCRYPTED).count() == 7
    assert_all_decrypt(old_rows)


def test_verify_fails_until_every_row_is_on_the_primary(run_command, old_rows, settings):
    outcome = run_command("rotate_encryption_keys", "--verify")
    assert "7 stored keys: 0 decrypt under the primary key id 'new' ('old': 7); 0 unreadable." in (
        outcome.stdout
    )
    assert outcome.error.startswith("7 keys are still under another key id")
    run_command("rotate_encryption_keys", "--batch-size", "5")
    # A row that claims a key id which did not write it is unreadable, not "on old".
    LLMKey.objects.filter(pk=min(old_rows)).update(encryption_key_id="old")
    outcome = run_command("rotate_encryption_keys", "--verify")
    assert "1 stored keys cannot be decrypted" in outcome.error
    LLMKey.objects.filter(pk=min(old_rows)).update(encryption_key_id="new")
    outcome = run_command("rotate_encryption_keys", "--verify")
    assert outcome.error is None
    assert "OK: every key is under 'new'" in outcome.stdout


def test_after_rotation_the_old_key_can_be_dropped(run_command, old_rows, settings):
    run_command("rotate_encryption_keys")
    settings.LLM_KEY_ENCRYPTION_KEYS = NEW
    assert run_command("rotate_encryption_keys", "--verify").error is None
    assert_all_decrypt(old_rows)


def test_without_rotation_dropping_the_old_key_fails_closed(run_command, old_rows, settings):
    settings.LLM_KEY_ENCRYPTION_KEYS = NEW
    outcome = run_command("rotate_encryption_keys")
    assert "7 unreadable" in outcome.stdout
    assert outcome.error.startswith("7 stored keys cannot be decrypted with any key")
    assert key_ids() == {"old": 7}
    assert "'old': 7" in run_command("rotate_encryption_keys", "--verify").stdout


def test_a_key_saved_during_the_rotation_is_not_lost(run_command, old_rows, monkeypatch):
    """The application writes a key after the batch was read and before it is written."""
    real = rotation._prepare
    target = sorted(old_rows)[1]
    replacement = fake_key()

    def prepare_then_the_app_writes(ring, rows, result):
        rewrites = real(ring, rows, result)
        if any(row[0] == target for row in rows):
            llm_key = LLMKey.objects.get(pk=target)
            # The application keeps reading and writing keys meanwhile.
            assert llm_key_decrypt(llm_key) == old_rows[target]
            llm_key_set(
                workspace=llm_key.workspace,
                raw_key=replacement,
                actor=Actor(label="app"),
                check=False,
            )
        return rewrites

    monkeypatch.setattr(rotation, "_prepare", prepare_then_the_app_writes)
    outcome = run_command("rotate_encryption_keys", "--batch-size", "4")
    assert "Re-encrypted 6 keys" in outcome.stdout
    assert "1 changed meanwhile" in outcome.stdout
    assert llm_key_decrypt(LLMKey.objects.get(pk=target)) == replacement
    assert key_ids() == {"new": 7}
    assert_all_decrypt({**old_rows, target: replacement})


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_transaction_on_a_row_wins_on_postgres(on_postgres, run_command, settings):
    """A real second connection holds the row lock while the rotation reaches it."""
    settings.LLM_KEY_ENCRYPTION_KEYS = OLD
    workspaces = [WorkspaceFactory(slug=f"pg-{i}") for i in range(3)]
    for workspace in workspaces:
        llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(label="t"), check=False)
    settings.LLM_KEY_ENCRYPTION_KEYS = f"{NEW},{OLD}"
    target = LLMKey.objects.get(workspace=workspaces[1])
    replacement = fake_key()
    locked, rotation_waiting = threading.Event(), threading.Event()

    def app_request():
        try:
            with transaction.atomic():
                LLMKey.objects.select_for_update().get(pk=target.pk)
                locked.set()
                rotation_waiting.wait(5)
                llm_key_set(
                    workspace=workspaces[1],
                    raw_key=replacement,
                    actor=Actor(label="app"),
                    check=False,
                )
        finally:
            connection.close()

    thread = threading.Thread(target=app_request)
    thread.start()
    assert locked.wait(5)
    timer = threading.Timer(0.5, rotation_waiting.set)
    timer.start()
    outcome = run_command("rotate_encryption_keys")
    thread.join()
    assert "Re-encrypted 2 keys" in outcome.stdout
    assert "1 changed meanwhile" in outcome.stdout
    assert llm_key_decrypt(LLMKey.objects.get(pk=target.pk)) == replacement
    assert key_ids() == {"new": 3}


def test_unreadable_rows_are_left_alone_and_reported(run_command, old_rows):
    victim = min(old_rows)
    LLMKey.objects.filter(pk=victim).update(encryption_key_id="lost")
    outcome = run_command("rotate_encryption_keys")
    assert "Re-encrypted 6 keys" in outcome.stdout
    assert outcome.error.startswith("1 stored keys cannot be decrypted with any key")
    assert f"(LLM key ids {victim})" in outcome.error
    assert LLMKey.objects.get(pk=victim).encryption_key_id == "lost"


@pytest.mark.parametrize("ring", ["", "garbage", "k1:c2hvcnQ="])
@pytest.mark.parametrize("flag", [[], ["--verify"], ["--dry-run"]])
def test_missing_or_malformed_key_ring(run_command, old_rows, settings, ring, flag):
    settings.LLM_KEY_ENCRYPTION_KEYS = ring
    outcome = run_command("rotate_encryption_keys", *flag)
    assert "LLM_KEY_ENCRYPTION_KEYS" in outcome.error
    assert key_ids() == {"old": 7}


@pytest.mark.parametrize("size", ["0", "-1", "10001"])
def test_bad_batch_size(run_command, old_rows, size):
    outcome = run_command("rotate_encryption_keys", "--batch-size", size)
    assert outcome.error == "--batch-size must be between 1 and 10000."
    assert key_ids() == {"old": 7}


def test_from_a_shell_a_missing_ring_is_one_line(manage_py):
    result = manage_py("rotate_encryption_keys", env={"LLM_KEY_ENCRYPTION_KEYS": ""})
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "LLM_KEY_ENCRYPTION_KEYS is not set." in result.stderr
