"""The statements one credits request sends to the database (issue 19: 15 before it, 16
with reservations and leases, 14 since the ledger reads no balance back: docs/decisions/106
and 108). Savepoints are left out: outside a test's transaction they are the
request's own BEGIN/COMMIT pairs, which the count before did not include either. Nor does
any transaction open another inside it: a savepoint is two more round trips."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from .helpers import body, post, post_streamed

pytestmark = pytest.mark.django_db
MOST = 14


def _sent(run) -> list[str]:
    """Every statement the request ``run`` sends, savepoints included."""
    with CaptureQueriesContext(connection) as queries:
        response = run()
    assert response.status_code == 200, response.content
    return [q["sql"] for q in queries.captured_queries]


def _statements(run) -> list[str]:
    return [sql for sql in _sent(run) if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def test_a_plain_credits_request_sends_few_statements(member_client, funded):
    post(member_client, body())  # the member's monthly counter row exists from now on
    statements = _statements(lambda: post(member_client, body()))
    print(f"\nplain credits request: {len(statements)} statements")
    assert len(statements) <= MOST, "\n".join(s[:100] for s in statements)


def test_a_streamed_credits_request_sends_few_statements(member_client, funded):
    post(member_client, body())
    statements = _statements(lambda: post_streamed(member_client, body(stream=True)))
    print(f"\nstreamed credits request: {len(statements)} statements")
    assert len(statements) <= MOST, "\n".join(s[:100] for s in statements)


def _deepest_transaction(run) -> int:
    """How deep the request's transactions nest: in a test's transaction each of the
    request's own is a savepoint, so 1 is a request's BEGIN ... COMMIT, 2 a savepoint in it."""
    depth = deepest = 0
    for sql in _sent(run):
        if sql.startswith("SAVEPOINT"):
            depth += 1
            deepest = max(deepest, depth)
        elif sql.startswith(("RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            depth -= 1
    return deepest


def test_a_streamed_credits_request_nests_no_transaction(member_client, funded):
    """The settlement writes the usage row in its own transaction, not in one around it."""
    post(member_client, body())
    deepest = _deepest_transaction(lambda: post_streamed(member_client, body(stream=True)))
    assert deepest == 1


def test_a_plain_credits_request_nests_no_transaction(member_client, funded):
    post(member_client, body())
    assert _deepest_transaction(lambda: post(member_client, body())) == 1
