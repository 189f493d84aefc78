import base64

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from ai_gateway.models import AIRequest
from credits.services import credits_grant, credits_hold, credits_settle
from llm_keys.models import LLMKey
from llm_keys.services import Actor, llm_key_set
from tests.conftest import SENTINEL_KEY
from tests.factories import UserFactory


@pytest.fixture
def support_user(db):
    user = UserFactory(email="support@example.com", is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    return user


@pytest.fixture
def support_client(support_user):
    client = Client()
    client.force_login(support_user)
    return client


@pytest.fixture
def sentinel_llm_key(workspace, admin_user):
    """The sentinel key stored for "acme", with a little history around it."""
    llm_key = llm_key_set(
        workspace=workspace, raw_key=SENTINEL_KEY, actor=Actor(user=admin_user), check=False
    )
    grant = credits_grant(workspace=workspace, amount=5000, reason="Welcome credits")
    hold = credits_hold(workspace=workspace, amount=300, idempotency_key="req-1")
    credits_settle(hold=hold, amount=120)
    AIRequest.objects.create(
        workspace=workspace,
        user=admin_user,
        provider="anthropic",
        model="claude-sonnet-5",
        credential_source="platform",
        outcome="ok",
        input_tokens=1000,
        output_tokens=200,
        credits_charged=120,
        provider_request_id="req_standin_1",
    )
    AIRequest.objects.create(
        workspace=workspace,
        user=admin_user,
        provider="anthropic",
        model="claude-sonnet-5",
        credential_source="byok",
        outcome="key_rejected",
        provider_error_type="authentication_error",
    )
    assert grant.pk
    return LLMKey.objects.get(pk=llm_key.pk)


def secret_forms(llm_key: LLMKey) -> list[str]:
    """The plaintext and every way a page could spell the ciphertext out."""
    ciphertext = bytes(llm_key.ciphertext)
    sealed = ciphertext[12:]
    forms = [SENTINEL_KEY]
    for value in (ciphertext, sealed):
        forms += [
            base64.b64encode(value).decode(),
            base64.urlsafe_b64encode(value).decode(),
            value.hex(),
            value.hex().upper(),
            value.decode("latin-1"),
            repr(value)[2:-1],
        ]
    return forms


def assert_no_secret(text: str | bytes, llm_key: LLMKey, where: str = "") -> None:
    if isinstance(text, bytes):
        assert bytes(llm_key.ciphertext) not in text, f"raw ciphertext in {where}"
        text = text.decode("utf-8", errors="replace")
    for form in secret_forms(llm_key):
        assert form not in text, f"a form of the secret in {where}"
