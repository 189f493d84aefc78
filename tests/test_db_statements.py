"""config.db: the fixed statements of the hot paths, and the health check they stand in for."""

import psycopg
import pytest
from django.conf import settings
from django.db import DataError, connection

from config.db import fetch_one, select_instance
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db(transaction=True)


def _new_request():
    # What Django does between requests: the next request checks a reused connection again.
    connection.close_if_unusable_or_obsolete()
    assert connection.health_check_done is False


def _terminate_this_connection():
    pid = connection.connection.info.backend_pid
    dsn = connection.connection.info.dsn
    with psycopg.connect(dsn, password=settings.DATABASES["default"]["PASSWORD"] or None) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.fixture
def health_checks(settings):
    connection.close()
    connection.settings_dict["CONN_HEALTH_CHECKS"] = True
    connection.settings_dict["CONN_MAX_AGE"] = 60
    yield
    connection.settings_dict["CONN_MAX_AGE"] = 0
    connection.close()


def test_a_read_replaces_a_connection_lost_between_requests(on_postgres, health_checks):
    workspace = Workspace.objects.create(name="Acme", slug="acme")
    _new_request()
    _terminate_this_connection()
    found = select_instance(Workspace, ("id", "name"), "slug = %s", ["acme"])
    assert found.pk == workspace.pk
    assert connection.health_check_done is True
    # The replacement connection serves the rest of the request.
    assert fetch_one("SELECT 1", []) == (1,)


def test_a_failing_read_on_a_healthy_connection_is_not_run_twice(on_postgres, health_checks):
    Workspace.objects.create(name="Acme", slug="acme")
    _new_request()
    pid = connection.connection.info.backend_pid
    with pytest.raises(DataError):
        fetch_one("SELECT 1 / %s", [0], read_only=True)
    assert connection.connection.info.backend_pid == pid


def test_a_write_after_a_lost_connection_gets_the_ordinary_health_check(on_postgres, health_checks):
    Workspace.objects.create(name="Acme", slug="acme")
    _new_request()
    _terminate_this_connection()
    row = fetch_one(
        "UPDATE workspaces_workspace SET name = %s WHERE slug = %s RETURNING 1", ["Acme 2", "acme"]
    )
    assert row == (1,)
    assert Workspace.objects.get(slug="acme").name == "Acme 2"


def test_a_read_on_a_healthy_connection_is_its_own_health_check(
    on_postgres, health_checks, monkeypatch
):
    Workspace.objects.create(name="Acme", slug="acme")
    _new_request()
    checks = []
    is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or is_usable())
    assert select_instance(Workspace, ("id",), "slug = %s", ["acme"]) is not None
    assert checks == []  # no SELECT 1 before it
    assert connection.health_check_done is True
