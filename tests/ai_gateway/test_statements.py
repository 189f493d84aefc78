"""The statements one credits request sends to the database (issue 19: 15 before it, 16
with reservations and leases, 14 since the ledger reads no balance back: docs/decisions/106
and 108). Savepoints are left out: outside a test's transaction they are the
request's own BEGIN/COMMIT pairs, which the count before did not include either."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from .helpers import body, post, post_streamed

pytestmark = pytest.mark.django_db
MOST = 14


def _statements(run) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = run()
    assert response.status_code == 200, response.content
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


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
