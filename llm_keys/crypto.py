"""Authenticated encryption of stored provider keys under a key ring.

The ring comes from ``LLM_KEY_ENCRYPTION_KEYS``: comma-separated ``<id>:<base64 32 bytes>``
entries, primary first. The primary encrypts; every entry decrypts, so a ring ``new,old``
reads rows written under either while ``rotate_encryption_keys`` moves them to ``new``.

A value is AES-256-GCM with a fresh 96-bit nonce per write, stored as ``nonce || ciphertext``
beside the id of the key that wrote it. Callers pass associated data that names the row the
value belongs to, so a ciphertext copied to another row fails to decrypt. Every failure
raises; nothing here ever hands back ciphertext as if it were plaintext.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class KeyRingError(Exception):
    """The key ring setting is missing or malformed."""


class DecryptionError(Exception):
    """A stored value cannot be decrypted with the current key ring."""


class UnknownKeyIdError(DecryptionError):
    """The value was written under a key id that is not in the ring."""


@dataclass(frozen=True, slots=True)
class EncryptedValue:
    key_id: str
    ciphertext: bytes


class KeyRing:
    """Encrypt under the primary key; decrypt under whichever key wrote the value."""

    def __init__(self, entries: list[tuple[str, bytes]]):
        if not entries:
            raise KeyRingError("The key ring is empty.")
        self._ciphers: dict[str, AESGCM] = {}
        for key_id, key in entries:
            if key_id in self._ciphers:
                raise KeyRingError(f"Key id '{key_id}' appears twice in the key ring.")
            self._ciphers[key_id] = AESGCM(key)
        self.primary_id = entries[0][0]
        self.key_ids = tuple(key_id for key_id, _ in entries)

    @classmethod
    def parse(cls, value: str) -> KeyRing:
        """Build a ring from the ``LLM_KEY_ENCRYPTION_KEYS`` format."""
        if not value or not value.strip():
            raise KeyRingError(
                "LLM_KEY_ENCRYPTION_KEYS is not set. Generate an entry with "
                "'manage.py generate_encryption_key' and set it in the environment."
            )
        entries = []
        for position, raw in enumerate(value.split(","), start=1):
            raw = raw.strip()
            key_id, sep, encoded = raw.partition(":")
            if not sep or not KEY_ID_PATTERN.match(key_id):
                raise KeyRingError(
                    f"Entry {position} of LLM_KEY_ENCRYPTION_KEYS is not '<id>:<base64 key>' "
                    "(the id is 1-32 letters, digits, '-' or '_')."
                )
            try:
                key = base64.urlsafe_b64decode(encoded.encode("ascii"))
            except (binascii.Error, ValueError, UnicodeEncodeError):
                raise KeyRingError(
                    f"Entry {position} ('{key_id}') of LLM_KEY_ENCRYPTION_KEYS is not valid base64."
                ) from None
            if len(key) != KEY_BYTES:
                raise KeyRingError(
                    f"Entry {position} ('{key_id}') of LLM_KEY_ENCRYPTION_KEYS must decode to "
                    f"{KEY_BYTES} bytes, not {len(key)}."
                )
            entries.append((key_id, key))
        return cls(entries)

    def encrypt(self, plaintext: str, associated_data: bytes) -> EncryptedValue:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.primary_id].encrypt(
            nonce, plaintext.encode("utf-8"), associated_data
        )
        return EncryptedValue(key_id=self.primary_id, ciphertext=nonce + sealed)

    def decrypt(self, value: EncryptedValue, associated_data: bytes) -> str:
        cipher = self._ciphers.get(value.key_id)
        if cipher is None:
            raise UnknownKeyIdError(
                f"The stored key was encrypted under key id '{value.key_id}', which is not in "
                "LLM_KEY_ENCRYPTION_KEYS. Restore that entry to the ring."
            )
        data = bytes(value.ciphertext)
        if len(data) <= NONCE_BYTES:
            raise DecryptionError("The stored ciphertext is truncated.")
        try:
            plaintext = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise DecryptionError(
                f"The stored key failed authentication under key id '{value.key_id}': "
                "it was altered, or belongs to another row."
            ) from None
        return plaintext.decode("utf-8")


def generate_entry(key_id: str | None = None) -> str:
    """Return a new ring entry ``<id>:<base64 key>`` with a random key."""
    key_id = key_id or f"k{secrets.token_hex(4)}"
    if not KEY_ID_PATTERN.match(key_id):
        raise KeyRingError("A key id is 1-32 letters, digits, '-' or '_'.")
    key = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
    return f"{key_id}:{key}"


@lru_cache(maxsize=4)
def _parse_cached(value: str) -> KeyRing:
    return KeyRing.parse(value)


def get_key_ring() -> KeyRing:
    """Return the ring configured in settings (parsed once per distinct value)."""
    from django.conf import settings

    return _parse_cached(settings.LLM_KEY_ENCRYPTION_KEYS)
