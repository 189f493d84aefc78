import re
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from api_tokens.models import ApiToken, ApiTokenEvent
from api_tokens.services import (
    Actor,
    ApiTokenNameError,
    ApiTokenNotFoundError,
    api_token_authenticate,
    api_token_create,
    api_token_hash,
    api_token_revoke,
)
from tests.factories import WorkspaceFactory, api_token_for

pytestmark = pytest.mark.django_db


def test_a_new_token_is_long_random_and_never_shaped_like_an_anthropic_key(workspace, admin_user):
    created = api_token_create(workspace=workspace, name="copilot", actor=Actor(user=admin_user))
    raw = created.raw_token
    assert re.fullmatch(r"byok_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}", raw)
    assert not raw.startswith("sk-ant-")
    token = ApiToken.objects.get()
    assert token.prefix == raw[:13] and token.last4 == raw[-4:]
    assert token.token_hash == api_token_hash(raw) and raw not in token.token_hash
    assert token.created_by == admin_user and token.last_used_at is None
    assert raw not in repr(created)
    other = api_token_create(workspace=workspace, name="other", actor=Actor(user=admin_user))
    assert other.raw_token[13:] != raw[13:]


def test_creating_a_token_writes_an_audit_event_without_the_token(workspace, admin_user):
    created = api_token_create(workspace=workspace, name="copilot", actor=Actor(user=admin_user))
    event = ApiTokenEvent.objects.get()
    assert (event.action, event.token_name, event.actor) == ("created", "copilot", admin_user)
    assert event.token_prefix == created.token.prefix
    values = " ".join(str(v) for v in ApiTokenEvent.objects.values().get().values())
    assert created.raw_token not in values and created.token.token_hash not in values


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the token a name"),
        ("   ", "Give the token a name"),
        ("x" * 101, "at most 100 characters"),
        ("two\nlines", "control characters"),
    ],
)
def test_a_bad_name_is_refused_with_a_reason_and_nothing_is_written(workspace, name, message):
    with pytest.raises(ApiTokenNameError, match=message):
        api_token_create(workspace=workspace, name=name, actor=Actor(label="t"))
    assert not ApiToken.objects.exists() and not ApiTokenEvent.objects.exists()


def test_a_name_is_unique_among_live_tokens_only(workspace):
    token, _ = api_token_for(workspace, "ci")
    with pytest.raises(ApiTokenNameError, match="already has a live token named"):
        api_token_create(workspace=workspace, name=" ci ", actor=Actor(label="t"))
    api_token_for(WorkspaceFactory(), "ci")  # another workspace may use the name
    api_token_revoke(workspace=workspace, token_id=token.pk, actor=Actor(label="t"))
    api_token_for(workspace, "ci")  # once revoked, the name is free again
    assert ApiToken.objects.filter(workspace=workspace, name="ci").count() == 2


def test_the_database_refuses_two_live_tokens_with_one_name(workspace):
    api_token_for(workspace, "ci")
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiToken.objects.create(
            workspace=workspace,
            name="ci",
            prefix="byok_ZZZZZZZZ",
            last4="abcd",
            token_hash="0" * 64,
        )


@pytest.mark.parametrize(
    "fields",
    [
        {"prefix": "sk-ant-api03x"},
        {"prefix": "byok_short"},
        {"token_hash": "abc"},
        {"last4": "ab"},
        {"name": ""},
        {"revoked_by_id": "USER"},  # revoked_by without revoked_at
    ],
)
def test_the_database_refuses_malformed_rows(workspace, admin_user, fields):
    row = dict(
        workspace=workspace, name="n", prefix="byok_AAAAAAAA", last4="abcd", token_hash="0" * 64
    )
    row.update(fields)
    if row.get("revoked_by_id") == "USER":
        row["revoked_by_id"] = admin_user.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiToken.objects.create(**row)


def test_authenticate_returns_the_live_token_with_its_workspace_in_one_query(
    workspace, django_assert_num_queries
):
    token, raw = api_token_for(workspace)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    with django_assert_num_queries(1):
        found = api_token_authenticate(raw_token=raw)
        assert found.workspace.slug == "acme"  # no second query for the workspace
    assert found.pk == token.pk


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),
        lambda raw: raw[:13],
        lambda raw: raw + "x",
        lambda raw: "sk-ant-" + raw,
        lambda raw: "",
        lambda raw: "byok_" + "x" * 5000,
        lambda raw: raw.upper(),
        lambda raw: raw[:13] + "\x00" + raw[14:],
        lambda raw: raw[:5] + "\x00" + raw[6:],
        lambda raw: raw[:-1] + "\ud800",
        lambda raw: raw[:-1] + "é",
        lambda raw: raw[:-1] + "\n",
    ],
)
def test_authenticate_refuses_anything_but_the_exact_token(
    workspace, mangle, django_assert_max_num_queries
):
    _, raw = api_token_for(workspace)
    with django_assert_max_num_queries(1):
        assert api_token_authenticate(raw_token=mangle(raw)) is None


@pytest.mark.parametrize("garbage", ["", "x", "byok_", "\x00" * 60, None, 12, b"byok_"])
def test_authenticate_asks_the_database_nothing_for_what_is_not_token_shaped(
    db, garbage, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert api_token_authenticate(raw_token=garbage) is None


def test_a_revoked_token_is_refused_by_the_very_next_request(workspace, admin_user):
    token, raw = api_token_for(workspace)
    assert api_token_authenticate(raw_token=raw) is not None
    api_token_revoke(workspace=workspace, name="ci job", actor=Actor(user=admin_user))
    assert api_token_authenticate(raw_token=raw) is None
    token.refresh_from_db()
    assert token.revoked_by == admin_user and token.revoked_at is not None
    assert list(ApiTokenEvent.objects.values_list("action", flat=True)) == ["revoked", "created"]


def test_a_token_of_a_deleted_workspace_is_refused(db):
    doomed = WorkspaceFactory()
    _, raw = api_token_for(doomed)
    doomed.delete()
    assert api_token_authenticate(raw_token=raw) is None


def test_last_used_is_written_at_most_once_a_minute(workspace, django_assert_num_queries):
    token, raw = api_token_for(workspace)
    with django_assert_num_queries(2):  # the read, and the first use's write
        api_token_authenticate(raw_token=raw)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # used again within the minute: read only
        api_token_authenticate(raw_token=raw)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(seconds=61))
    api_token_authenticate(raw_token=raw)
    token.refresh_from_db()
    assert token.last_used_at > first - timedelta(seconds=1)


def test_the_conditional_write_skips_a_use_another_process_already_recorded(workspace):
    token, raw = api_token_for(workspace)
    stale = timezone.now() - timedelta(minutes=5)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    loaded = api_token_authenticate(raw_token=raw)
    assert loaded.last_used_at > stale
    # A second process that read the stale value a moment before writes nothing now.
    recent = loaded.last_used_at
    assert (
        ApiToken.objects.filter(
            pk=token.pk, last_used_at__lte=recent - timedelta(minutes=1)
        ).update(last_used_at=timezone.now())
        == 0
    )


def test_revoking_an_unknown_or_already_revoked_token_says_so(workspace):
    token, _ = api_token_for(workspace)
    with pytest.raises(ApiTokenNotFoundError, match="no live API token named “nope”"):
        api_token_revoke(workspace=workspace, name="nope", actor=Actor(label="t"))
    api_token_revoke(workspace=workspace, token_id=token.pk, actor=Actor(label="t"))
    with pytest.raises(ApiTokenNotFoundError):
        api_token_revoke(workspace=workspace, token_id=token.pk, actor=Actor(label="t"))
    assert ApiTokenEvent.objects.filter(action="revoked").count() == 1


def test_a_workspace_cannot_revoke_another_workspaces_token(workspace):
    other_token, raw = api_token_for(WorkspaceFactory(), "theirs")
    with pytest.raises(ApiTokenNotFoundError):
        api_token_revoke(workspace=workspace, token_id=other_token.pk, actor=Actor(label="t"))
    assert api_token_authenticate(raw_token=raw) is not None


def test_token_events_are_append_only(workspace):
    api_token_for(workspace)
    event = ApiTokenEvent.objects.get()
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()
