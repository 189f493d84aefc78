"""Every row of the SPEC §7 table, through the HTTP API and the real SDK against the stand-in:
which key reached the provider, the status, the ledger and the usage row."""

import pytest
from django.core import mail

from ai_gateway import services
from ai_gateway.errors import LLMKeyInvalidError, LLMKeyUnreadableError
from ai_gateway.models import AIRequest
from credits.selectors import credits_balance
from llm_keys.models import KeyEvent, KeyStatus, LLMKey
from llm_keys.services import Actor, llm_key_set
from tests.factories import fake_key

from .helpers import MODEL, body, ledger, post

OTHER_RING = "other:b3RoZXIta2V5LTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg="


def only_row(workspace) -> AIRequest:
    rows = list(AIRequest.objects.filter(workspace=workspace))
    assert len(rows) == 1, rows
    return rows[0]


# --- BYOK key valid / unverified --------------------------------------------------------------


def test_valid_key_pays_and_no_credits_are_used(
    member_client, workspace, saved_key, funded, standin
):
    response = post(member_client, body())

    assert response.status_code == 200
    data = response.json()
    assert data["credential_source"] == "byok"
    assert data["credits_charged"] == 0
    assert data["type"] == "message" and data["content"][0]["text"].startswith("Stand-in reply")
    message_keys = [r.api_key for r in standin.requests if r.path == "/v1/messages"]
    assert message_keys == [saved_key.raw]
    assert ledger(workspace) == [("grant", funded)]
    assert credits_balance(workspace=workspace) == funded
    row = only_row(workspace)
    assert (row.credential_source, row.outcome, row.credits_charged) == ("byok", "ok", 0)
    assert row.model == MODEL and row.input_tokens > 0 and row.output_tokens > 0
    assert row.provider_request_id.startswith("req_standin_")


def test_unverified_key_is_used_too(member_client, workspace, admin_user, funded, standin):
    raw = fake_key()
    llm_key_set(workspace=workspace, raw_key=raw, actor=Actor(user=admin_user), check=False)
    assert LLMKey.objects.get(workspace=workspace).status == KeyStatus.UNVERIFIED

    response = post(member_client, body())

    assert response.status_code == 200
    assert response.json()["credential_source"] == "byok"
    assert standin.keys_seen() == [raw]
    assert ledger(workspace) == [("grant", funded)]
    assert only_row(workspace).credential_source == "byok"


@pytest.mark.parametrize(
    ("behavior", "status", "error_type"),
    [
        # The provider's own status and type (SPEC §17).
        ("servererror", 500, "api_error"),
        ("overloaded", 529, "overloaded_error"),
        # The connection reset before any answer (the SDK's retries are reset too).
        ("connreset", 503, "provider_unavailable"),
        ("ratelimited", 429, "rate_limit_error"),
    ],
)
def test_provider_error_on_byok_is_passed_on_and_never_falls_back(
    member_client, workspace, saved_key, funded, standin, behavior, status, error_type
):
    standin.set_behavior(saved_key.raw, behavior)

    response = post(member_client, body())

    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == error_type
    assert "Nothing was charged" in error["message"]
    assert set(standin.keys_seen()) == {saved_key.raw}
    assert ledger(workspace) == [("grant", funded)]
    row = only_row(workspace)
    assert (row.outcome, row.credential_source, row.error_type) == (
        "provider_error",
        "byok",
        error_type,
    )
    # A provider that is unavailable says nothing about the key.
    assert LLMKey.objects.get(workspace=workspace).status == KeyStatus.VALID


@pytest.mark.parametrize(
    ("behavior", "provider_error_type"),
    [("revoked", "authentication_error"), ("forbidden", "permission_error")],
)
def test_key_refused_during_a_request_is_marked_invalid_once(
    member_client,
    workspace,
    saved_key,
    admin_user,
    funded,
    standin,
    behavior,
    provider_error_type,
    django_capture_on_commit_callbacks,
):
    standin.set_behavior(saved_key.raw, behavior)

    with django_capture_on_commit_callbacks(execute=True):
        first = post(member_client, body())

    assert first.status_code == 409
    error = first.json()["error"]
    assert error["type"] == "llm_key_invalid"
    assert "Workspace Settings → LLM Key" in error["message"]
    llm_key = LLMKey.objects.get(workspace=workspace)
    assert llm_key.status == KeyStatus.INVALID
    assert "Rejected by Anthropic" in llm_key.status_reason
    assert KeyEvent.objects.filter(action=KeyEvent.Action.BECAME_INVALID).count() == 1
    assert [m.to for m in mail.outbox] == [[admin_user.email]]
    row = only_row(workspace)
    assert (row.outcome, row.provider_error_type) == ("key_rejected", provider_error_type)

    # The next request is refused without asking the provider, and never uses credits.
    seen = len(standin.requests)
    with django_capture_on_commit_callbacks(execute=True):
        second = post(member_client, body())
    assert second.status_code == 409
    assert len(standin.requests) == seen
    assert ledger(workspace) == [("grant", funded)]
    assert len(mail.outbox) == 1


# --- BYOK key invalid -------------------------------------------------------------------------


def test_invalid_key_with_full_credits_never_reaches_the_provider(
    member_client, workspace, saved_key, funded, standin, platform_key
):
    LLMKey.objects.filter(pk=saved_key.pk).update(status=KeyStatus.INVALID)
    standin.reset()

    for stream in (False, True):
        response = post(member_client, body(stream=stream))
        assert response.status_code == 409
        assert response["x-should-retry"] == "false"
        error = response.json()["error"]
        assert error["type"] == "llm_key_invalid"
        # The message quotes the gateway's request id, as the answer's header says it.
        assert error["message"] == (
            f"{services.KEY_INVALID_MESSAGE} (request id {response['request-id']})"
        )

    assert standin.requests == []
    assert platform_key not in standin.keys_seen()
    assert ledger(workspace) == [("grant", funded)]
    assert credits_balance(workspace=workspace) == funded
    rows = AIRequest.objects.filter(workspace=workspace)
    assert {(r.outcome, r.credential_source, r.credits_charged) for r in rows} == {
        ("key_invalid", "none", 0)
    }


def test_invalid_key_refused_through_python_entry_point(workspace, saved_key, funded, standin):
    LLMKey.objects.filter(pk=saved_key.pk).update(status=KeyStatus.INVALID)
    standin.reset()

    with pytest.raises(LLMKeyInvalidError) as raised:
        services.create_message(
            workspace=workspace,
            user=None,
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=10,
        )

    assert "update it in Workspace Settings → LLM Key" in raised.value.message
    assert standin.requests == []


# --- BYOK key undecryptable -------------------------------------------------------------------


def test_undecryptable_key_is_refused_and_keeps_its_status(
    member_client, workspace, saved_key, funded, standin, settings
):
    standin.reset()
    settings.LLM_KEY_ENCRYPTION_KEYS = OTHER_RING

    response = post(member_client, body())

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "llm_key_unreadable"
    assert "LLM_KEY_ENCRYPTION_KEYS" in error["message"]
    assert standin.requests == []
    assert LLMKey.objects.get(workspace=workspace).status == KeyStatus.VALID
    assert ledger(workspace) == [("grant", funded)]
    row = only_row(workspace)
    assert (row.outcome, row.credential_source) == ("key_unreadable", "none")


def test_undecryptable_key_raises_typed_error(workspace, saved_key, settings):
    settings.LLM_KEY_ENCRYPTION_KEYS = OTHER_RING
    with pytest.raises(LLMKeyUnreadableError):
        services.credentials_resolve(workspace=workspace)


# --- no key: platform key and AI credits ------------------------------------------------------


def test_no_key_uses_platform_key_and_charges_credits(
    member_client, workspace, funded, standin, platform_key
):
    response = post(member_client, body())

    assert response.status_code == 200
    data = response.json()
    assert data["credential_source"] == "platform"
    assert data["credits_charged"] > 0
    assert standin.keys_seen() == [platform_key]
    kinds = [kind for kind, _amount in ledger(workspace)]
    assert kinds == ["grant", "hold", "settle"]
    charged = data["credits_charged"]
    assert credits_balance(workspace=workspace) == funded - charged
    row = only_row(workspace)
    assert (row.credential_source, row.outcome, row.credits_charged) == (
        "platform",
        "ok",
        charged,
    )
    # The charge is the price of the tokens the provider reported, rounded up.
    price = services.pricing.get_price(MODEL)
    assert charged == services.pricing.cost(
        price, services.Usage(input_tokens=row.input_tokens, output_tokens=row.output_tokens)
    )


def test_no_key_insufficient_credits_refused_before_the_provider(member_client, workspace, standin):
    response = post(member_client, body())

    assert response.status_code == 402
    error = response.json()["error"]
    assert error["type"] == "insufficient_credits"
    assert "has 0" in error["message"]
    assert standin.requests == []
    assert ledger(workspace) == []
    assert only_row(workspace).outcome == "insufficient_credits"


def test_no_key_provider_error_releases_the_hold(
    member_client, workspace, funded, standin, platform_key
):
    standin.set_behavior(platform_key, "overloaded")

    response = post(member_client, body())

    assert response.status_code == 529
    assert "Nothing was charged" in response.json()["error"]["message"]
    assert [kind for kind, _ in ledger(workspace)] == ["grant", "hold", "release"]
    assert credits_balance(workspace=workspace) == funded
    row = only_row(workspace)
    assert (row.outcome, row.credential_source, row.credits_charged) == (
        "provider_error",
        "platform",
        0,
    )


def test_platform_key_refused_is_an_operator_problem(
    member_client, workspace, funded, standin, platform_key
):
    standin.set_behavior(platform_key, "revoked")

    response = post(member_client, body())

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "platform_credentials_rejected"
    assert response["x-should-retry"] == "false"
    assert credits_balance(workspace=workspace) == funded
    assert mail.outbox == []


def test_no_key_unknown_model_refused_on_credits(member_client, workspace, funded, standin):
    response = post(member_client, body(model="claude-imaginary-9"))

    assert response.status_code == 400
    assert "not available with AI credits" in response.json()["error"]["message"]
    assert standin.requests == []
    assert ledger(workspace) == [("grant", funded)]


def test_unknown_model_goes_to_the_provider_on_byok(member_client, workspace, saved_key, standin):
    response = post(member_client, body(model="claude-imaginary-9"))

    assert response.status_code == 200
    assert response.json()["credential_source"] == "byok"


def test_no_platform_key_configured(member_client, workspace, funded, standin, settings):
    settings.PLATFORM_ANTHROPIC_API_KEY = ""

    response = post(member_client, body())

    assert response.status_code == 503
    assert "PLATFORM_ANTHROPIC_API_KEY" in response.json()["error"]["message"]
    assert standin.requests == []


def test_removing_the_key_reverts_to_credits(
    member_client, workspace, saved_key, admin_user, funded, standin, platform_key
):
    from llm_keys.services import llm_key_remove

    assert post(member_client, body()).json()["credential_source"] == "byok"
    llm_key_remove(workspace=workspace, actor=Actor(user=admin_user))
    assert post(member_client, body()).json()["credential_source"] == "platform"
    message_keys = [r.api_key for r in standin.requests if r.path == "/v1/messages"]
    assert message_keys == [saved_key.raw, platform_key]


def test_usage_above_the_hold_is_charged_up_to_the_balance_and_the_shortfall_recorded(
    member_client, workspace, standin
):
    from credits.models import CreditEntry, EntryKind
    from credits.services import credits_grant

    credits_grant(workspace=workspace, amount=20_000, reason="test allowance")
    # The provider reports far more input than the hold could foresee (the estimate was low).
    # (1M tokens: the most any context window holds, so a count the adapter trusts.)
    standin.set_usage_override({"input_tokens": 1_000_000, "output_tokens": 10})

    response = post(member_client, body(max_tokens=10))

    assert response.status_code == 200, response.content
    settle = CreditEntry.objects.get(kind=EntryKind.SETTLE)
    assert credits_balance(workspace=workspace) == 0  # charged up to the balance
    assert settle.charged == response.json()["credits_charged"]
    assert settle.written_off > 0  # the shortfall, recorded where support can see it
    # Sonnet 5: 30,000 credits per million input tokens, 150,000 per million output, rounded up.
    assert settle.charged + settle.written_off == 30_002
