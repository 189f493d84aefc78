import pytest

from llm_keys.models import KeyEvent, KeyStatus, LLMKey
from llm_keys.services import Actor, llm_key_set
from tests.conftest import SENTINEL_KEY
from tests.factories import WorkspaceFactory, fake_key


class TestRemoveLLMKey:
    def test_removes_the_key_and_audits_the_operator(self, run_command, saved_key):
        outcome = run_command("remove_llm_key", "acme")
        assert outcome.error is None
        assert "Removed the anthropic key of workspace 'acme'" in outcome.stdout
        assert not LLMKey.objects.exists()
        event = KeyEvent.objects.get(action="removed")
        assert event.actor_label == "operator (remove_llm_key)"
        assert saved_key.raw not in outcome.text

    def test_nothing_to_remove_is_said_and_not_an_error(self, run_command, workspace):
        outcome = run_command("remove_llm_key", "acme")
        assert outcome.error is None
        assert "has no anthropic key; nothing was removed" in outcome.stdout

    def test_unknown_workspace(self, run_command, saved_key):
        outcome = run_command("remove_llm_key", "nope")
        assert "No workspace has the slug 'nope'" in outcome.error
        assert LLMKey.objects.count() == 1

    def test_unknown_provider(self, run_command, saved_key):
        outcome = run_command("remove_llm_key", "acme", "--provider", "mistral")
        assert "Unknown provider 'mistral'" in outcome.error
        assert LLMKey.objects.count() == 1

    @pytest.mark.parametrize("ring", ["", "garbage"])
    def test_missing_or_malformed_key_ring(self, run_command, saved_key, settings, ring):
        settings.LLM_KEY_ENCRYPTION_KEYS = ring
        outcome = run_command("remove_llm_key", "acme")
        assert "LLM_KEY_ENCRYPTION_KEYS" in outcome.error
        assert LLMKey.objects.count() == 1


def store(workspace, raw, status=None):
    llm_key = llm_key_set(workspace=workspace, raw_key=raw, actor=Actor(label="test"), check=False)
    if status:
        LLMKey.objects.filter(pk=llm_key.pk).update(status=status)
    return llm_key


class TestCheckLLMKeys:
    def test_checks_every_key_and_prints_a_table(self, run_command, workspace, standin):
        good = store(workspace, fake_key())
        other = WorkspaceFactory(slug="beta")
        store(other, SENTINEL_KEY)
        outcome = run_command("check_llm_keys")
        assert outcome.error is None
        lines = outcome.stdout.splitlines()
        assert lines[0].split() == ["WORKSPACE", "PROVIDER", "KEY", "STATUS", "NOTE"]
        assert lines[1].split()[:6] == [
            "acme",
            "anthropic",
            good.masked,
            "unverified",
            "→",
            "valid",
        ]
        assert lines[2].split()[:6] == [
            "beta",
            "anthropic",
            "sk-ant-…AbCd",
            "unverified",
            "→",
            "valid",
        ]
        assert lines[-1] == "2 keys checked; none is invalid."
        assert len(standin.keys_seen()) == 2
        assert SENTINEL_KEY in standin.keys_seen()
        assert SENTINEL_KEY not in outcome.text
        assert set(LLMKey.objects.values_list("status", flat=True)) == {KeyStatus.VALID}
        assert KeyEvent.objects.filter(actor_label="operator (check_llm_keys)").count() == 2

    def test_exits_non_zero_when_a_key_is_invalid(self, run_command, workspace, standin):
        store(workspace, fake_key("revoked"), status=KeyStatus.VALID)
        store(WorkspaceFactory(slug="beta"), fake_key())
        outcome = run_command("check_llm_keys")
        assert "valid → invalid" in outcome.stdout
        assert outcome.error == "1 of 2 keys failed: acme (invalid)."

    def test_only_the_named_workspaces(self, run_command, workspace, standin):
        store(workspace, fake_key())
        store(WorkspaceFactory(slug="beta"), fake_key("revoked"))
        outcome = run_command("check_llm_keys", "acme")
        assert outcome.error is None
        assert len(standin.keys_seen()) == 1
        assert "beta" not in outcome.stdout

    def test_unknown_workspace_checks_nothing(self, run_command, workspace, standin):
        store(workspace, fake_key())
        outcome = run_command("check_llm_keys", "acme", "nope")
        assert "No workspace has the slug 'nope'" in outcome.error
        assert standin.keys_seen() == []

    def test_an_unreachable_provider_leaves_the_status(self, run_command, workspace, standin):
        store(workspace, fake_key("overloaded"), status=KeyStatus.VALID)
        outcome = run_command("check_llm_keys")
        assert outcome.error is None
        assert "valid → valid" in outcome.stdout

    def test_an_undecryptable_key_fails_without_a_provider_call(
        self, run_command, workspace, standin, settings
    ):
        store(workspace, fake_key())
        LLMKey.objects.update(encryption_key_id="gone")
        outcome = run_command("check_llm_keys")
        assert "unverified → unreadable" in outcome.stdout
        assert "'gone', which is not in LLM_KEY_ENCRYPTION_KEYS" in outcome.stdout
        assert outcome.error == "1 of 1 keys failed: acme (unreadable)."
        assert standin.keys_seen() == []
        assert LLMKey.objects.get().status == KeyStatus.UNVERIFIED

    def test_no_keys(self, run_command, workspace):
        assert run_command("check_llm_keys").stdout.strip() == "No stored keys to check."

    @pytest.mark.parametrize("ring", ["", "garbage"])
    def test_missing_or_malformed_key_ring(self, run_command, workspace, settings, standin, ring):
        store(workspace, fake_key())
        settings.LLM_KEY_ENCRYPTION_KEYS = ring
        outcome = run_command("check_llm_keys")
        assert "LLM_KEY_ENCRYPTION_KEYS" in outcome.error
        assert standin.keys_seen() == []
