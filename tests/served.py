"""The project as users run it: a real server process (``make serve``, or ``make run``'s web
command) on its own database, talking to the loopback stand-in.

Tests that use it see what a user's client sees: HTTP through uvicorn, the session cookie and
CSRF token from the login page, server-sent events as they arrive.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a-long-served-password-8841"
PLATFORM_KEY = "sk-ant-api03-PLATFORM0key0for0served0tests0xxxxxxxxxxPLAT"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServedDatabase:
    """A database of the served app's own: the test's database is inside a transaction the
    server process cannot see."""

    url: str
    vendor: str
    name: str
    sqlite_path: Path | None = None

    def rows(self, sql: str) -> list[tuple]:
        if self.vendor == "sqlite":
            with sqlite3.connect(self.sqlite_path) as db:
                return db.execute(sql).fetchall()
        with psycopg.connect(self.url, autocommit=True) as db:
            return db.execute(sql).fetchall()

    def connections(self, *, application_name: str) -> int:
        """Open PostgreSQL connections to this database of the server that connects under
        ``application_name`` (other servers on the same database not counted)."""
        with psycopg.connect(self._admin_url(), autocommit=True) as db:
            row = db.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND application_name = %s",
                [self.name, application_name],
            ).fetchone()
        return row[0]

    def _admin_url(self) -> str:
        return self.url.rsplit("/", 1)[0] + "/postgres"

    @classmethod
    def create(cls, tmp_path: Path) -> ServedDatabase:
        if connection.vendor != "postgresql":
            path = tmp_path / "served.sqlite3"
            return cls(url=f"sqlite:///{path}", vendor="sqlite", name=path.name, sqlite_path=path)
        settings = connection.settings_dict
        name = f"byok_served_{secrets.token_hex(4)}"
        base = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}"
        database = cls(url=f"{base}/{name}", vendor="postgresql", name=name)
        with psycopg.connect(database._admin_url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return database

    def drop(self) -> None:
        if self.vendor == "postgresql":
            with psycopg.connect(self._admin_url(), autocommit=True) as db:
                db.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class ServedApp:
    url: str
    process: subprocess.Popen
    env: dict[str, str]
    database: ServedDatabase
    log_path: Path
    clients: list[httpx2.Client] = field(default_factory=list)

    def manage(self, *args: str, stdin: str | None = None, expect_ok: bool = True) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if expect_ok:
            assert done.returncode == 0, done.stderr
        return done.stdout

    def api_token(self, slug: str, name: str) -> str:
        """A new workspace API token, from ``create_api_token`` (its last line of output)."""
        return self.manage("create_api_token", slug, "--name", name).strip().splitlines()[-1]

    def workspace(self, slug: str, *, admin: str) -> None:
        self.manage(
            "create_workspace",
            slug,
            "--name",
            slug.title(),
            "--admin",
            admin,
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )

    def login(self, email: str) -> httpx2.Client:
        """A browser-like client logged in through the login form: session and CSRF cookies."""
        client = httpx2.Client(base_url=self.url, timeout=30)
        self.clients.append(client)
        client.get("/login/")
        response = client.post(
            "/login/",
            data={
                "username": email,
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        assert response.status_code == 302, response.text
        return client

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def served_environment(database: ServedDatabase, standin_url: str, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # MAKEFLAGS too: `make test-postgres DATABASE_URL=...` would pass its variables to
        # the served app's own `make serve` through it.
        if not key.startswith(
            ("DJANGO_", "DATABASE_", "LLM_KEY_", "AI_", "CELERY_", "MAKE", "MFLAGS")
        )
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_READ_DOT_ENV="false",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="served-test-secret-" + secrets.token_hex(16),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_COOKIES="false",
        LLM_KEY_ENCRYPTION_KEYS="test1:dGVzdC1rZXktMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY=",
        DATABASE_URL=database.url,
        ANTHROPIC_BASE_URL=standin_url,
        PLATFORM_ANTHROPIC_API_KEY=PLATFORM_KEY,
        CELERY_BROKER_URL="memory://",
        EMAIL_URL="consolemail://",
        PORT=str(port),
        WEB_CONCURRENCY="1",
    )
    return env


def start(
    command: Callable[[int], list[str]],
    *,
    database: ServedDatabase,
    standin_url: str,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
) -> ServedApp:
    """Migrate the database, start ``command(port)`` and wait until it answers /healthz."""
    port = free_port()
    env = served_environment(database, standin_url, port)
    env.update(extra_env or {})
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    log = log_path.open("wb")
    process = subprocess.Popen(
        command(port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    app = ServedApp(
        url=f"http://127.0.0.1:{port}",
        process=process,
        env=env,
        database=database,
        log_path=log_path,
    )
    if wait_for_health(process, f"{app.url}/healthz", timeout=60):
        return app
    if process.poll() is not None:
        raise AssertionError(f"the server exited with {process.returncode}:\n{app.log()}")
    app.stop()
    raise AssertionError(f"the server did not answer /healthz within 60 s:\n{app.log()}")


def wait_for_health(process: subprocess.Popen, url: str, *, timeout: float) -> bool:
    """Poll ``url`` until it answers 200 (True), or the process exits or ``timeout`` seconds
    pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx2.get(url, timeout=1).status_code == 200:
                return True
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    return False


def uvicorn_command(port: int) -> list[str]:
    """The ASGI server ``make serve`` runs, as one process importing ``config.asgi`` itself
    (for tests that give it their own environment, without make's supervisor)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host=127.0.0.1",
        f"--port={port}",
        "--lifespan=off",
    ]


def make_serve_command(port: int) -> list[str]:
    """``make serve``; it reads the port from the environment (PORT)."""
    return ["make", "--no-print-directory", "serve"]


def sse_events(response: httpx2.Response) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a streamed response, as they arrive."""
    event = data = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif not line and event:
            yield event, data
            event = data = ""


def npm_installed(path: Path, *, make_target: str, package: str) -> Path:
    """``path``, installed from npm by ``make <make_target>`` if it is not there yet; the
    test skips, saying so, where the npm registry cannot be reached."""
    if path.exists():
        return path
    done = subprocess.run(
        ["make", "--no-print-directory", make_target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode == 0:
        return path
    reachable = subprocess.run(
        ["npm", "view", package, "version"], capture_output=True, timeout=60, check=False
    )
    if reachable.returncode != 0:
        pytest.skip(f"the npm registry is unreachable: {package} cannot be installed")
    raise AssertionError(f"make {make_target} failed:\n{done.stdout}\n{done.stderr}")
