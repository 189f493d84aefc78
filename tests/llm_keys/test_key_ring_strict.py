"""The key ring is parsed strictly: every fault is refused with a message saying what is
wrong, and none of them repeats key material."""

import base64

import pytest

from llm_keys.checks import check_key_ring
from llm_keys.crypto import KeyRing, KeyRingError, generate_entry

A = generate_entry("a")
B = generate_entry("b")
A_KEY = A.split(":", 1)[1]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"{A}\n{B}", "line break"),
        (f"{A}\r\n{B}", "line break"),
        (f"{A},\n{B}", "line break"),
        (f"{A}\t", None),  # trailing whitespace of the whole value is not a fault
        (f"{A}!", "not valid base64"),
        (f"a:{A_KEY[:10]}*{A_KEY[11:]}", "not valid base64"),
        (f"a:{A_KEY.rstrip('=')}", "not valid base64"),
        (f"a:{A_KEY[:-4]} {A_KEY[-4:]}", "not valid base64"),
        (f"{A},", "Entry 2 of LLM_KEY_ENCRYPTION_KEYS is empty"),
        (f"{A},,{B}", "Entry 2 of LLM_KEY_ENCRYPTION_KEYS is empty"),
        (f"{A},b:{A_KEY}", "Entries 'a' and 'b' of LLM_KEY_ENCRYPTION_KEYS hold the same key"),
        (f"{A},{A}", "Key id 'a' appears twice"),
    ],
)
def test_loose_rings_are_refused_with_what_is_wrong(value, message):
    if message is None:
        assert KeyRing.parse(value).key_ids == ("a",)
        return
    with pytest.raises(KeyRingError, match=message) as caught:
        KeyRing.parse(value)
    assert A_KEY.rstrip("=")[:12] not in str(caught.value)


def test_the_same_key_in_the_standard_and_url_safe_alphabets_is_one_key():
    raw = bytes(range(250, 256)) * 5 + b"\xfb\xff"
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    assert std != url
    assert KeyRing.parse(f"s:{std}").key_ids == ("s",)
    with pytest.raises(KeyRingError, match="hold the same key"):
        KeyRing.parse(f"s:{std},u:{url}")


def test_a_ring_joined_by_newlines_fails_the_system_check(settings):
    settings.LLM_KEY_ENCRYPTION_KEYS = f"{A}\n{B}"
    errors = check_key_ring()
    assert [e.id for e in errors] == ["llm_keys.E001"]
    assert "line break" in errors[0].msg
