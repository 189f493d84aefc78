"""Tokens under real concurrency: threads with their own PostgreSQL connections."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.db.models import QuerySet
from django.utils import timezone

from api_tokens.models import ApiToken, ApiTokenEvent
from api_tokens.services import (
    Actor,
    ApiTokenNameError,
    ApiTokenNotFoundError,
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
)
from tests.factories import WorkspaceFactory, api_token_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_in_threads(count: int, work) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def target(index):
        try:
            barrier.wait()
            results[index] = work()
        except Exception as exc:  # noqa: BLE001 - the test looks at what each thread got
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_admins_creating_one_name_at_once_get_one_token(on_postgres):
    workspace = WorkspaceFactory()
    results = run_in_threads(
        8, lambda: api_token_create(workspace=workspace, name="ci", actor=Actor(label="t"))
    )
    made = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, ApiTokenNameError)]
    assert len(made) == 1 and len(refused) == 7
    assert ApiToken.objects.count() == 1 and ApiTokenEvent.objects.count() == 1


def test_a_token_revoked_at_once_by_many_is_revoked_once(on_postgres):
    workspace = WorkspaceFactory()
    token, raw = api_token_for(workspace)
    results = run_in_threads(
        6, lambda: api_token_revoke(workspace=workspace, token_id=token.pk, actor=Actor(label="t"))
    )
    assert sum(isinstance(r, ApiToken) for r in results) == 1
    assert sum(isinstance(r, ApiTokenNotFoundError) for r in results) == 5
    assert ApiTokenEvent.objects.filter(action="revoked").count() == 1
    assert api_token_authenticate(raw_token=raw) is None


def test_concurrent_uses_write_last_used_once(on_postgres, monkeypatch):
    workspace = WorkspaceFactory()
    token, raw = api_token_for(workspace)
    stale = timezone.now() - timedelta(minutes=5)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    rows_written: list[int] = []
    update = QuerySet.update

    def counting_update(self, **kwargs):
        rows = update(self, **kwargs)
        if self.model is ApiToken and "last_used_at" in kwargs:
            rows_written.append(rows)
        return rows

    monkeypatch.setattr(QuerySet, "update", counting_update)
    results = run_in_threads(8, lambda: api_token_authenticate(raw_token=raw))
    assert all(isinstance(r, ApiToken) for r in results)
    # However many threads saw the stale time and tried, one write changed the row.
    assert sum(rows_written) == 1
    token.refresh_from_db()
    assert token.last_used_at > stale
