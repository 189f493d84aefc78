import pytest

from scripts.run_dev import web_command
from tests.served import ServedDatabase, make_serve_command, start


@pytest.fixture(scope="session")
def served_database(tmp_path_factory):
    database = ServedDatabase.create(tmp_path_factory.mktemp("served-db"))
    yield database
    database.drop()


def _started(command, database, standin_server, tmp_path_factory, **extra_env):
    return start(
        command,
        database=database,
        standin_url=standin_server.url,
        log_path=tmp_path_factory.mktemp("served-log") / "server.log",
        extra_env=extra_env,
    )


@pytest.fixture(scope="session")
def served(served_database, standin_server, tmp_path_factory):
    """``make serve``: the production server, started once for these tests."""
    app = _started(make_serve_command, served_database, standin_server, tmp_path_factory)
    yield app
    app.stop()


@pytest.fixture(scope="session")
def served_dev(served_database, standin_server, tmp_path_factory):
    """``make run``'s web command: uvicorn with autoreload."""
    app = _started(
        lambda port: web_command(str(port)), served_database, standin_server, tmp_path_factory
    )
    yield app
    app.stop()


@pytest.fixture(scope="session")
def served_small_pool(served_database, standin_server, tmp_path_factory):
    """``make serve`` with a pool of two database connections per process (PostgreSQL)."""
    if served_database.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    app = _started(
        make_serve_command,
        served_database,
        standin_server,
        tmp_path_factory,
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_SIZE="2",
        # Twenty credit-paid requests of one workspace at once: above the default limit of
        # concurrent credit requests (16), which is not what this server measures.
        AI_CREDITS_MAX_CONCURRENT_REQUESTS="32",
        # So that its connections can be told from the other servers' on the same database.
        DATABASE_URL=f"{served_database.url}?application_name=byok-small-pool",
    )
    yield app
    app.stop()
