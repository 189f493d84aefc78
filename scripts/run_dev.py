"""Run the development web server (and, with it, whatever else `make run` starts).

A supervisor: a worker or beat that dies is started again (after a pause that grows while
it keeps dying), and the web server keeps serving meanwhile; only the web server's own exit
ends the run. Every process is stopped together on Ctrl-C.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import dev_login  # noqa: E402

PY = sys.executable


def web_command(port: str) -> list[str]:
    """The development web server: the production ASGI server (uvicorn), reloading when a
    project file changes."""
    return [
        PY,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host=127.0.0.1",
        f"--port={port}",
        "--reload",
        f"--reload-dir={ROOT}",
        "--reload-exclude=.venv/*",
        "--reload-exclude=var/*",
        "--lifespan=off",
    ]


def main() -> int:
    port = os.environ.get("PORT", "8000")
    # Links in e-mails sent by the worker point at this server.
    os.environ.setdefault("SITE_URL", f"http://127.0.0.1:{port}")
    # The filesystem broker's folders must exist before any process publishes or consumes.
    (ROOT / "var" / "celery-broker" / "control").mkdir(parents=True, exist_ok=True)
    celery = ["-m", "celery", "-A", "config"]
    # A development VM or container often runs as root. Celery's warning about a root
    # worker is for production servers; this worker listens to a folder under var/ and
    # accepts JSON only, and on `make run` the warning reads as a fault.
    quiet_as_root = "-Wignore:You're running the worker with superuser privileges"
    commands = {
        "web": web_command(port),
        # Without CELERY_BROKER_URL the worker and beat talk through Kombu's filesystem
        # transport under var/celery-broker: no Redis needed on a development machine.
        # Threads, not prefork: a small footprint, and Ctrl-C stops it at once.
        "worker": [
            PY,
            quiet_as_root,
            *celery,
            "worker",
            "--loglevel=INFO",
            "--pool=threads",
            f"--concurrency={os.environ.get('CELERY_WORKER_CONCURRENCY', '4')}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        "beat": [PY, *celery, "beat", "--loglevel=INFO"],
    }
    interrupted = threading.Event()
    # Ctrl-C reaches every process of the terminal's group at once; a child that exits on it
    # before this loop sees the interrupt is part of stopping, not a failure.
    signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    ready, login = dev_login.prepare(ROOT)
    os.environ["BYOK_DEV_READY_DIR"] = str(ready)
    return supervise(
        commands,
        stop=interrupted,
        started=lambda: dev_login.print_when_ready(
            ready=ready, login=login, port=port, stop=interrupted
        ),
    )


# A process that stayed up this long had recovered: its next death restarts it at once again.
HEALTHY_AFTER_SECONDS = 60
MAX_RESTART_DELAY_SECONDS = 30


def supervise(
    commands: dict[str, list[str]],
    *,
    stop: threading.Event,
    started: Callable[[], None] = lambda: None,
    essential: str = "web",
    poll_seconds: float = 0.5,
) -> int:
    """Run every command; restart any but ``essential`` when it exits, with a backoff of
    1, 2, 4 … 30 s while it keeps dying; return when ``stop`` is set or ``essential`` exits."""
    processes = {name: subprocess.Popen(cmd, cwd=ROOT) for name, cmd in commands.items()}  # noqa: S603
    started_at = dict.fromkeys(commands, time.monotonic())
    failures = dict.fromkeys(commands, 0)
    started()
    try:
        while not stop.is_set():
            for name, proc in processes.items():
                code = proc.poll()
                if code is None or stop.wait(poll_seconds):
                    continue
                if name == essential:
                    print(f"{name} exited with {code}; stopping the rest.", file=sys.stderr)
                    return code or 1
                if time.monotonic() - started_at[name] > HEALTHY_AFTER_SECONDS:
                    failures[name] = 0
                delay = min(2 ** failures[name], MAX_RESTART_DELAY_SECONDS)
                failures[name] += 1
                print(
                    f"{name} exited with {code}; starting it again in {delay} s "
                    f"({essential} keeps running).",
                    file=sys.stderr,
                )
                if stop.wait(delay):
                    break
                processes[name] = subprocess.Popen(commands[name], cwd=ROOT)  # noqa: S603
                started_at[name] = time.monotonic()
            stop.wait(poll_seconds)
        return 0
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
