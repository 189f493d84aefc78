import pytest
from django.core.checks import Error, Warning

from llm_keys.checks import check_key_ring
from llm_keys.crypto import (
    DecryptionError,
    EncryptedValue,
    KeyRing,
    KeyRingError,
    UnknownKeyIdError,
    generate_entry,
)
from llm_keys.models import KeyEvent, KeyStatus, LLMKey, associated_data_for
from llm_keys.services import Actor, KeyUnreadableError, llm_key_check, llm_key_decrypt, llm_key_set
from tests.factories import WorkspaceFactory, fake_key

AD = associated_data_for(1, "anthropic")


@pytest.fixture
def ring():
    return KeyRing.parse(generate_entry("new"))


def test_round_trip(ring):
    raw = fake_key()
    sealed = ring.encrypt(raw, AD)
    assert sealed.key_id == "new"
    assert raw.encode() not in sealed.ciphertext
    assert ring.decrypt(sealed, AD) == raw


def test_two_encryptions_of_the_same_key_differ(ring):
    raw = fake_key()
    first, second = ring.encrypt(raw, AD), ring.encrypt(raw, AD)
    assert first.ciphertext != second.ciphertext
    assert first.ciphertext[:12] != second.ciphertext[:12]  # fresh nonce each time


def test_associated_data_binds_the_ciphertext_to_its_row(ring):
    sealed = ring.encrypt(fake_key(), associated_data_for(1, "anthropic"))
    with pytest.raises(DecryptionError, match="altered, or belongs to another row"):
        ring.decrypt(sealed, associated_data_for(2, "anthropic"))


def test_tampered_ciphertext_fails(ring):
    sealed = ring.encrypt(fake_key(), AD)
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionError):
        ring.decrypt(EncryptedValue(sealed.key_id, bytes(flipped)), AD)
    with pytest.raises(DecryptionError, match="truncated"):
        ring.decrypt(EncryptedValue(sealed.key_id, sealed.ciphertext[:8]), AD)


def test_unknown_key_id_fails_with_a_clear_error(ring):
    sealed = ring.encrypt(fake_key(), AD)
    other = KeyRing.parse(generate_entry("other"))
    with pytest.raises(
        UnknownKeyIdError, match="key id 'new', which is not in LLM_KEY_ENCRYPTION_KEYS"
    ):
        other.decrypt(sealed, AD)


def test_a_ring_decrypts_with_every_entry_and_encrypts_with_the_primary():
    old_entry, new_entry = generate_entry("old"), generate_entry("new")
    old_ring = KeyRing.parse(old_entry)
    both = KeyRing.parse(f"{new_entry},{old_entry}")
    raw = fake_key()
    assert both.decrypt(old_ring.encrypt(raw, AD), AD) == raw
    assert both.encrypt(raw, AD).key_id == "new"


@pytest.mark.parametrize(
    "value,message",
    [
        ("", "LLM_KEY_ENCRYPTION_KEYS is not set"),
        ("nocolon", "is not '<id>:<base64 key>'"),
        ("bad id!:AAAA", "is not '<id>:<base64 key>'"),
        ("k1:not base64!!", "not valid base64"),
        ("k1:AAAA", "must decode to 32 bytes, not 3"),
    ],
)
def test_malformed_rings_are_refused_clearly(value, message):
    with pytest.raises(KeyRingError, match=message):
        KeyRing.parse(value)


def test_duplicate_key_ids_are_refused():
    entry = generate_entry("same")
    with pytest.raises(KeyRingError, match="appears twice"):
        KeyRing.parse(f"{entry},{entry}")


class TestSystemCheck:
    def test_production_without_a_ring_is_an_error(self, settings):
        settings.DEBUG = False
        settings.LLM_KEY_ENCRYPTION_KEYS = ""
        errors = check_key_ring()
        assert [type(e) for e in errors] == [Error]
        assert errors[0].id == "llm_keys.E001"
        assert "generate_encryption_key" in errors[0].hint

    def test_a_malformed_ring_is_an_error_even_in_development(self, settings):
        settings.DEBUG = True
        settings.LLM_KEY_ENCRYPTION_KEYS = "k1:AAAA"
        assert check_key_ring()[0].id == "llm_keys.E001"

    def test_development_without_a_ring_is_a_warning(self, settings):
        settings.DEBUG = True
        settings.LLM_KEY_ENCRYPTION_KEYS = ""
        assert [type(e) for e in check_key_ring()] == [Warning]

    def test_a_good_ring_passes(self, settings):
        settings.LLM_KEY_ENCRYPTION_KEYS = generate_entry("a")
        assert check_key_ring() == []


@pytest.mark.django_db
class TestStoredKeys:
    def test_a_ciphertext_copied_to_another_workspace_fails(self, saved_key, admin_user):
        other = WorkspaceFactory()
        copy = LLMKey.objects.create(
            workspace=other,
            provider="anthropic",
            ciphertext=saved_key.ciphertext,
            encryption_key_id=saved_key.encryption_key_id,
            hint=saved_key.hint,
            status=KeyStatus.VALID,
        )
        with pytest.raises(KeyUnreadableError):
            llm_key_decrypt(copy)
        assert llm_key_decrypt(LLMKey.objects.get(pk=saved_key.pk)) == saved_key.raw

    def test_unknown_key_id_fails_closed_without_provider_call_or_status_change(
        self, saved_key, standin, settings, admin_user
    ):
        settings.LLM_KEY_ENCRYPTION_KEYS = generate_entry("replacement")
        standin.reset()
        with pytest.raises(KeyUnreadableError, match="not in LLM_KEY_ENCRYPTION_KEYS"):
            llm_key_check(llm_key=LLMKey.objects.get(), actor=Actor(user=admin_user))
        assert standin.requests == []
        stored = LLMKey.objects.get()
        assert stored.status == KeyStatus.VALID
        assert KeyEvent.objects.filter(action=KeyEvent.Action.DECRYPT_FAILED).count() == 1

    def test_tampered_row_fails_closed(self, saved_key, standin, admin_user):
        blob = bytearray(saved_key.ciphertext)
        blob[20] ^= 0xFF
        LLMKey.objects.filter(pk=saved_key.pk).update(ciphertext=bytes(blob))
        standin.reset()
        with pytest.raises(KeyUnreadableError, match="failed authentication"):
            llm_key_check(llm_key=LLMKey.objects.get(), actor=Actor(user=admin_user))
        assert standin.requests == []
        assert LLMKey.objects.get().status == KeyStatus.VALID

    def test_changing_secret_key_changes_nothing(self, saved_key, settings):
        settings.SECRET_KEY = "a-completely-different-secret-key-after-rotation"
        assert llm_key_decrypt(LLMKey.objects.get()) == saved_key.raw

    def test_the_settings_page_says_when_a_key_cannot_be_decrypted(
        self, admin_client, saved_key, settings, standin
    ):
        settings.LLM_KEY_ENCRYPTION_KEYS = generate_entry("replacement")
        standin.reset()
        response = admin_client.post("/w/acme/settings/llm-key/check/", follow=True)
        assert "cannot be decrypted" in response.content.decode()
        assert standin.requests == []
        assert LLMKey.objects.get().status == KeyStatus.VALID

    def test_each_row_records_the_key_id_that_wrote_it(self, workspace, admin_user, settings):
        settings.LLM_KEY_ENCRYPTION_KEYS = (
            f"{generate_entry('second')},{settings.LLM_KEY_ENCRYPTION_KEYS}"
        )
        stored = llm_key_set(
            workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user), check=False
        )
        assert stored.encryption_key_id == "second"
