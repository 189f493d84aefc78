"""An AI request waiting on the provider holds no database connection: through ``make serve``
on PostgreSQL with a pool of two, twenty requests that each wait a second on the provider
all run at once, and the server never holds more than its two connections."""

import threading
import time

import httpx2
import pytest

pytestmark = pytest.mark.served

QUESTION = {
    "model": "claude-sonnet-5",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "Slowly, please"}],
}


def test_requests_waiting_on_the_provider_hold_no_connection(
    on_postgres, served_small_pool, standin
):
    app = served_small_pool
    app.workspace("pool", admin="admin@pool.test")
    app.manage("grant_credits", "pool", "5000000", "--reason", "served test")
    clients = [app.login("admin@pool.test") for _ in range(20)]
    standin.state.latency = 1.0
    peak, statuses, done = [0], [], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], app.database.connections(application_name="byok-small-pool"))
            time.sleep(0.05)

    def ask(client):
        try:
            response = client.post(
                "/api/v1/w/pool/messages",
                json=QUESTION,
                headers={"X-CSRFToken": client.cookies["csrftoken"]},
            )
        except httpx2.HTTPError as exc:  # listed in the assertion below, not lost in a thread
            statuses.append(repr(exc))
        else:
            statuses.append(response.status_code)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    threads = [threading.Thread(target=ask, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    done.set()
    watcher.join()

    assert statuses == [200] * 20
    # Holding a connection through each 1 s provider call, two connections would need 10 s.
    assert elapsed < 6, elapsed
    assert 1 <= peak[0] <= 2
    [(count,)] = app.database.rows(
        "SELECT count(*) FROM ai_gateway_airequest WHERE outcome = 'ok' AND workspace_id ="
        " (SELECT id FROM workspaces_workspace WHERE slug = 'pool')"
    )
    assert count == 20
