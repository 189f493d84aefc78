import io

import pytest

from llm_keys.models import KeyEvent, KeyStatus, LLMKey
from llm_keys.services import llm_key_decrypt
from tests.conftest import SENTINEL_KEY
from tests.factories import fake_key
from tests.leaks import assert_secret_absent, capture_all_logs


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_saves_a_checked_key_read_from_stdin(run_command, workspace, standin):
    raw = fake_key()
    outcome = run_command("set_llm_key", "acme", stdin=raw + "\n")
    assert outcome.error is None
    stored = LLMKey.objects.get(workspace=workspace)
    assert stored.status == KeyStatus.VALID
    assert llm_key_decrypt(stored) == raw
    assert standin.keys_seen() == [raw]
    assert f"sk-ant-…{raw[-4:]}" in outcome.stdout
    assert "valid" in outcome.stdout
    assert raw not in outcome.text
    event = KeyEvent.objects.get(workspace=workspace)
    assert (event.action, event.actor_label) == ("set", "operator (set_llm_key)")


def test_no_check_saves_unverified_without_asking_the_provider(run_command, workspace, standin):
    outcome = run_command("set_llm_key", "acme", "--no-check", stdin=fake_key())
    assert outcome.error is None
    assert LLMKey.objects.get().status == KeyStatus.UNVERIFIED
    assert standin.keys_seen() == []


def test_replaces_the_existing_key(run_command, saved_key, standin):
    raw = fake_key()
    assert run_command("set_llm_key", "acme", stdin=raw).error is None
    stored = LLMKey.objects.get()
    assert llm_key_decrypt(stored) == raw
    assert KeyEvent.objects.filter(action="replaced", actor_label="operator (set_llm_key)").exists()


def test_a_rejected_replacement_leaves_the_working_key_in_place(run_command, saved_key, standin):
    rejected = fake_key("revoked")
    outcome = run_command("set_llm_key", "acme", stdin=rejected)
    assert outcome.error.startswith("The key was not saved: ")
    assert "unchanged" in outcome.error
    assert rejected not in outcome.text
    stored = LLMKey.objects.get()
    assert llm_key_decrypt(stored) == saved_key.raw
    assert stored.status == KeyStatus.VALID


def test_prompts_without_echo_on_a_terminal(run_command, workspace, monkeypatch):
    raw = fake_key()
    prompts = []

    def fake_getpass(prompt):
        prompts.append(prompt)
        return raw

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    outcome = run_command("set_llm_key", "acme", "--no-check", stdin=Terminal(""))
    assert outcome.error is None
    assert prompts == ["API key (input hidden): "]
    assert llm_key_decrypt(LLMKey.objects.get()) == raw


def test_unknown_workspace(run_command, workspace, standin):
    outcome = run_command("set_llm_key", "nope", stdin=fake_key())
    assert "No workspace has the slug 'nope'" in outcome.error
    assert standin.keys_seen() == []
    assert not LLMKey.objects.exists()


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("not-a-key-at-all-0123456789", "start with 'sk-ant-'"),
        (SENTINEL_KEY + " !", "characters an Anthropic key never has"),
        ("sk-ant-short", "too short"),
    ],
)
def test_malformed_key(run_command, workspace, standin, stdin, message):
    outcome = run_command("set_llm_key", "acme", stdin=stdin)
    assert message in outcome.error
    assert SENTINEL_KEY not in outcome.text
    assert standin.keys_seen() == []
    assert not LLMKey.objects.exists()


@pytest.mark.parametrize("stdin", ["", "\n", "   \n"])
def test_empty_stdin(run_command, workspace, stdin):
    outcome = run_command("set_llm_key", "acme", stdin=stdin)
    assert outcome.error.startswith("No key on standard input.")
    assert not LLMKey.objects.exists()


def test_refuses_a_key_on_the_command_line_without_echoing_it(run_command, workspace):
    outcome = run_command("set_llm_key", "acme", SENTINEL_KEY, stdin=fake_key())
    assert "keys are only read from standard input" in outcome.error
    assert SENTINEL_KEY not in outcome.text
    assert not LLMKey.objects.exists()


def test_refuses_a_key_in_the_slug_position_without_echoing_it(run_command, workspace):
    outcome = run_command("set_llm_key", SENTINEL_KEY, stdin=fake_key())
    assert "keys are only read from standard input" in outcome.error
    assert SENTINEL_KEY not in outcome.text


def test_unknown_provider(run_command, workspace):
    outcome = run_command("set_llm_key", "acme", "--provider", "mistral", stdin=fake_key())
    assert (
        outcome.error == "Unknown provider 'mistral'. Known providers: anthropic, openai, gemini."
    )


@pytest.mark.parametrize(
    ("ring", "message"),
    [
        ("", "LLM_KEY_ENCRYPTION_KEYS is not set."),
        ("garbage", "Entry 1 of LLM_KEY_ENCRYPTION_KEYS is not '<id>:<base64 key>'"),
        ("k1:c2hvcnQ=", "must decode to 32 bytes"),
    ],
)
def test_missing_or_malformed_key_ring(run_command, workspace, settings, standin, ring, message):
    settings.LLM_KEY_ENCRYPTION_KEYS = ring
    outcome = run_command("set_llm_key", "acme", stdin=SENTINEL_KEY)
    assert message in outcome.error
    assert SENTINEL_KEY not in outcome.text
    assert standin.keys_seen() == []
    assert not LLMKey.objects.exists()


def test_the_sentinel_key_appears_in_no_output_log_or_event(
    run_command, workspace, standin, django_capture_on_commit_callbacks
):
    with capture_all_logs() as records, django_capture_on_commit_callbacks(execute=True):
        saved = run_command("set_llm_key", "acme", stdin=SENTINEL_KEY)
        rejected = run_command("set_llm_key", "acme", stdin=SENTINEL_KEY + "-revoked")
    assert saved.error is None
    assert rejected.error is not None
    assert_secret_absent(SENTINEL_KEY, records=records, texts=[saved.text, rejected.text])


class TestFromAShell:
    """The same failures through manage.py: system checks do not bury the one-line reason."""

    @pytest.mark.parametrize(
        ("ring", "message"),
        [("", "LLM_KEY_ENCRYPTION_KEYS is not set."), ("garbage", "is not '<id>:<base64 key>'")],
    )
    def test_missing_or_malformed_key_ring(self, manage_py, ring, message):
        result = manage_py(
            "set_llm_key", "acme", env={"LLM_KEY_ENCRYPTION_KEYS": ring}, stdin=SENTINEL_KEY
        )
        assert result.returncode == 1
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("CommandError: ") and message in lines[0]
        assert SENTINEL_KEY not in result.stderr

    def test_a_key_as_an_unknown_option_is_not_echoed(self, manage_py):
        result = manage_py("set_llm_key", "acme", f"--key={SENTINEL_KEY}")
        assert result.returncode != 0
        assert "keys are only read from standard input" in result.stderr
        assert SENTINEL_KEY not in result.stderr + result.stdout
