"""What the gateway benches share: the database, the servers they start, /proc accounting.

- ``ensure_database``: a PostgreSQL database of the bench's own, created if missing
  (``fresh=True`` drops it first, so the counts a bench checks are its own).
- ``server_environment``: the production settings a served process reads (SPEC §12), with
  fresh secrets and the stand-in as ``ANTHROPIC_BASE_URL``.
- ``Served``: a command started in its own process group on a free loopback port; the CPU
  seconds and resident memory of its whole process tree, read from /proc.
- ``litellm_command``: a LiteLLM proxy in its own virtual environment under ``var/``
  (installed on first use, never a project dependency) pointed at the same stand-in.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import resource
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
MODEL = "claude-haiku-4-5"
PLATFORM_KEY = "sk-ant-api03-" + "P" * 40 + "bench"
PASSWORD = "bench-password-not-secret"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Today's production command (README "Serving the web app"), for a checkout without
# ``make serve``; ``$PORT`` and ``$WEB_CONCURRENCY`` come from the bench.
GUNICORN_COMMAND = (
    '.venv/bin/gunicorn config.wsgi --worker-class gthread --workers "$WEB_CONCURRENCY" '
    '--threads 16 --bind "127.0.0.1:$PORT" --log-level warning'
)
# LiteLLM refuses to start without one; clients send it in x-api-key.
LITELLM_MASTER_KEY = "sk-bench-litellm-master-key"
LITELLM_REQUIREMENT = "litellm[proxy]>=1.108,<1.109"


def default_serve_command() -> str:
    """``make serve`` where the Makefile has it (SPEC §12), else today's gunicorn command."""
    makefile = (ROOT / "Makefile").read_text()
    if any(line.startswith("serve:") for line in makefile.splitlines()):
        return "make --no-print-directory serve"
    return GUNICORN_COMMAND


def raise_open_files_limit() -> None:
    """Let this process and the servers it starts hold a thousand sockets each."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_database(url: str, *, fresh: bool = False) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not (name.startswith("byok_bench") or ("_bench" in name and name.startswith("byok_"))):
        sys.exit(
            f"Refusing to use the database {name!r}: the benches use names byok_bench* "
            "or byok_<prefix>_bench*."
        )
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def admin_url(url: str) -> str:
    """The same server's ``postgres`` database, so polling it is not counted in the bench DB."""
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def server_environment(*, standin_url: str, database_url: str) -> dict[str, str]:
    ring = "bench:" + base64.b64encode(os.urandom(32)).decode()
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_READ_DOT_ENV": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_COOKIES": "false",
        "LLM_KEY_ENCRYPTION_KEYS": ring,
        "ANTHROPIC_BASE_URL": standin_url,
        "PLATFORM_ANTHROPIC_API_KEY": PLATFORM_KEY,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "EMAIL_URL": "dummymail://",
    }


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds including reaped children) of one process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return int(fields[1]), ticks / CLOCK_TICKS


def _memory(pid: int) -> tuple[int, int] | None:
    """(PSS, RSS) bytes of one process. PSS counts a page shared by n processes as 1/n in
    each, so the PSS of a server's processes adds up to the memory they occupy together;
    RSS counts a shared page in full in every process (a forked worker's, say)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    sizes = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in lines[1:]}
    return sizes.get("Pss", 0), sizes.get("Rss", 0)


def process_tree(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and every process below it."""
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in tree:
            tree[pid] = stats[pid][1]
            todo.extend(child for child, stat in stats.items() if stat[0] == pid)
    return tree


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the tree used between two snapshots (a process new since counts whole)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def _inherited() -> dict[str, str]:
    """This process's environment less the project's settings (a bench sets them for itself)."""
    project = set(server_environment(standin_url="", database_url="")) | {"WEB_CONCURRENCY"}
    return {name: value for name, value in os.environ.items() if name not in project}


class Served:
    """A server command in its own process group on a free loopback port."""

    def __init__(
        self, name: str, command: str, *, env: dict[str, str], health: str, log: Path
    ) -> None:
        self.name = name
        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                command,
                shell=True,
                cwd=ROOT,
                env={**_inherited(), **env, "PORT": str(self.port)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_healthy(health)

    def _wait_healthy(self, path: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
        self.stop()
        sys.exit(
            f"{self.name} did not answer {path} ({shlex.quote(self.command)}); "
            f"its log {self.log.relative_to(ROOT)} ends: {' | '.join(tail)}"
        )

    def tree(self) -> dict[int, float]:
        return process_tree(self.process.pid)

    def memory_by_process(self, pids: list[int]) -> list[tuple[int, int]]:
        """(proportional, resident) bytes of these processes of the tree, largest first."""
        return sorted(filter(None, map(_memory, pids)), reverse=True)

    def stop(self) -> None:
        """End the whole process group: the shell may exit before the server it started."""
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self.process.poll()
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.process.wait(timeout=10)


def litellm_command(*, standin_url: str, workers: int = 2) -> str:
    """The LiteLLM proxy command, installing it into var/litellm-venv on first use."""
    venv = VAR / "litellm-venv"
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        print(f"Installing {LITELLM_REQUIREMENT} into {venv.relative_to(ROOT)} (once) ...")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", LITELLM_REQUIREMENT], check=True
        )
    config = VAR / "litellm-bench.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: anthropic/{MODEL}\n"
        f"      api_base: {standin_url}\n"
        f"      api_key: {PLATFORM_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_MASTER_KEY}\n"
    )
    # uvicorn kills a worker that does not answer its health check within 5 s, which
    # LiteLLM's start-up misses on a busy 2-core machine: every worker then dies in a loop.
    return (
        f"{shlex.quote(str(binary))} --config {shlex.quote(str(config))} --host 127.0.0.1 "
        f'--port "$PORT" --num_workers {workers} --timeout_worker_healthcheck 120'
    )


def litellm_version() -> str:
    python = VAR / "litellm-venv" / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "?"


# No network here: LiteLLM must not fetch its model price map or send telemetry.
LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}


class StandinProcess:
    """bench/async_standin.py in its own process; its CPU is read from /proc."""

    def __init__(self, *, events: int = 100, seconds: float = 10.0, latency: float = 0.0) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "async_standin.py"),
                "--events",
                str(events),
                "--seconds",
                str(seconds),
                "--latency",
                str(latency),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening "):
            self.stop()
            sys.exit(f"the stand-in did not start: {line!r}")
        self.url = line.split(" ", 1)[1]

    def cpu(self) -> float:
        stat = _proc_stat(self.process.pid)
        return stat[1] if stat else 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


async def log_in(base_url: str, email: str) -> dict[str, str]:
    """Log in through the login page; the session API's cookie and CSRF headers."""
    import aiohttp
    from django.conf import settings

    session_name, csrf_name = settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        async with session.get(base_url + "/login/") as response:
            csrf = response.cookies[csrf_name].value
        async with session.post(
            base_url + "/login/",
            data={"username": email, "password": PASSWORD, "csrfmiddlewaretoken": csrf},
            headers={"Cookie": f"{csrf_name}={csrf}"},
            allow_redirects=False,
        ) as response:
            if response.status != 302 or session_name not in response.cookies:
                sys.exit(f"Logging in as {email} failed: HTTP {response.status}")
            sessionid = response.cookies[session_name].value
            if csrf_name in response.cookies:
                csrf = response.cookies[csrf_name].value
    return {
        "Content-Type": "application/json",
        "Cookie": f"{session_name}={sessionid}; {csrf_name}={csrf}",
        "X-CSRFToken": csrf,
    }
