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
        """Build a ring from the ``LLM_KEY_ENCRYPTION_KEYS`` format, refusing anything loose.

        Strict on purpose: a lenient parser silently dropped entries joined by a newline
        and ignored stray characters in the base64, so a ring that looked right was not the
        ring in use. Messages name the entry and the fault, never the key material.
        """
        if not value or not value.strip():
            raise KeyRingError(
                "LLM_KEY_ENCRYPTION_KEYS is not set. Generate an entry with "
                "'manage.py generate_encryption_key' and set it in the environment."
            )
        value = value.strip()
        if any(ch in value for ch in "\r\n\t"):
            raise KeyRingError(
                "LLM_KEY_ENCRYPTION_KEYS contains a line break or tab: separate the entries "
                "with commas, on one line ('<id>:<base64 key>,<id>:<base64 key>')."
            )
        entries: list[tuple[str, bytes]] = []
        seen_ids: dict[str, int] = {}
        seen_keys: dict[bytes, str] = {}
        for position, raw in enumerate(value.split(","), start=1):
            raw = raw.strip()
            if not raw:
                raise KeyRingError(
                    f"Entry {position} of LLM_KEY_ENCRYPTION_KEYS is empty: remove the extra comma."
                )
            key_id, sep, encoded = raw.partition(":")
            if not sep or not KEY_ID_PATTERN.match(key_id):
                raise KeyRingError(
                    f"Entry {position} of LLM_KEY_ENCRYPTION_KEYS is not '<id>:<base64 key>' "
                    "(the id is 1-32 letters, digits, '-' or '_')."
                )
            if key_id in seen_ids:
                raise KeyRingError(
                    f"Key id '{key_id}' appears twice in LLM_KEY_ENCRYPTION_KEYS (entries "
                    f"{seen_ids[key_id]} and {position}): give each key its own id."
                )
            seen_ids[key_id] = position
            key = _decode_key(encoded, position=position, key_id=key_id)
            if key in seen_keys:
                raise KeyRingError(
                    f"Entries '{seen_keys[key]}' and '{key_id}' of LLM_KEY_ENCRYPTION_KEYS hold "
                    "the same key: each id needs its own key (generate one with "
                    "'manage.py generate_encryption_key')."
                )
            seen_keys[key] = key_id
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


_BASE64_PATTERN = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")


def _decode_key(encoded: str, *, position: int, key_id: str) -> bytes:
    """Decode one entry's key: base64 (standard or URL-safe alphabet), padded, nothing else."""
    where = f"Entry {position} ('{key_id}') of LLM_KEY_ENCRYPTION_KEYS"
    if not encoded or not _BASE64_PATTERN.match(encoded) or len(encoded) % 4:
        raise KeyRingError(
            f"{where} is not valid base64: it has characters outside the base64 alphabet, or "
            "is cut short. Paste the entry exactly as generate_encryption_key printed it."
        )
    try:
        key = base64.b64decode(encoded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingError(f"{where} is not valid base64.") from None
    if len(key) != KEY_BYTES:
        raise KeyRingError(f"{where} must decode to {KEY_BYTES} bytes, not {len(key)}.")
    return key


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
