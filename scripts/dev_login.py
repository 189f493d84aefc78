"""Print the demo login again once the web server, the worker and beat are all up, so it is
the last thing on the screen rather than scrolled away under their banners (decision 066)."""

import socket
import threading
import time
from pathlib import Path

READY_TIMEOUT_SECONDS = 120


def _web_answers(port: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def prepare(root: Path) -> tuple[Path, str | None]:
    """Clear the readiness marks and take the login demo_setup left (deleting its file)."""
    ready = root / "var" / "ready"
    ready.mkdir(parents=True, exist_ok=True)
    for mark in ready.iterdir():
        mark.unlink()
    login_file = root / "var" / "demo-login.txt"
    login = None
    if login_file.exists():
        login = login_file.read_text()
        login_file.unlink()
    return ready, login


def print_when_ready(*, ready: Path, login: str | None, port: str, stop: threading.Event):
    """Start a thread that prints the login when everything answers (or after a timeout)."""

    def wait_then_print() -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        up = False
        while not stop.is_set() and time.monotonic() < deadline:
            marks = {mark.name for mark in ready.iterdir()}
            if {"worker", "beat"} <= marks and _web_answers(port):
                up = True
                break
            stop.wait(0.5)
        if stop.is_set():
            return
        url = f"http://127.0.0.1:{port}/"
        if up:
            print(f"\nReady: web, worker and beat are up. Open {url}", flush=True)
        else:
            print(
                f"\nStill starting after {READY_TIMEOUT_SECONDS} s (see the messages above); "
                f"then open {url}",
                flush=True,
            )
        if login:
            print(login, flush=True)

    thread = threading.Thread(target=wait_then_print, daemon=True)
    thread.start()
    return thread
