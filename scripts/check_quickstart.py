"""Run the README's offline section in a fresh clone and send the tour's first prompt.

    python3 scripts/check_quickstart.py [--keep]

Clones the committed HEAD into a temporary folder (nothing created by hand first), runs the
README's offline ``sh`` block there with free ports instead of 8765/8000, waits for the
login `make run` prints once web, worker and beat are up, logs in, sends a prompt to the
demo workspace through the session API, and prints how long each step took. Exits non-zero
when a step fails. Everything it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def offline_block(readme: str) -> str:
    section = readme.split("## Trying it offline", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="Keep the clone afterwards.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="byok-quickstart-"))
    clone = workdir / "byok"
    figures: dict[str, float] = {}
    started = time.monotonic()
    subprocess.run(  # noqa: S603
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],  # noqa: S607
        check=True,
    )
    standin_port, web_port = free_port(), free_port()
    block = offline_block((clone / "README.md").read_text()).replace("8765", str(standin_port))
    env = {**os.environ, "PORT": str(web_port)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("VIRTUAL_ENV", None)
    print(f"Running the README's offline block in {clone}:\n{block}", flush=True)
    log = (workdir / "run.log").open("w+")
    proc = subprocess.Popen(  # noqa: S603
        ["bash", "-euo", "pipefail", "-c", block],  # noqa: S607
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        email = password = None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            text = (workdir / "run.log").read_text()
            if "Ready: web, worker and beat are up" in text:
                tail = text.rsplit("Ready: web, worker and beat are up", 1)[1]
                email = re.search(r"email:\s+(\S+)", tail).group(1)
                password = re.search(r"password:\s+(\S+)", tail).group(1)
                break
            if proc.poll() is not None:
                print(text[-3000:])
                print(f"FAILED: the block exited with {proc.returncode} before it was ready.")
                return 1
            time.sleep(1)
        else:
            print((workdir / "run.log").read_text()[-3000:])
            print("FAILED: no login printed within the timeout.")
            return 1
        figures["clone to ready (s)"] = time.monotonic() - started
        print(f"Ready; the login was printed last ({email}).", flush=True)

        site = f"http://127.0.0.1:{web_port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(f"{site}/login/", timeout=10).read()
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        form = urllib.parse.urlencode(
            {"username": email, "password": password, "csrfmiddlewaretoken": csrf, "next": "/"}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - the loopback http URL built above
            f"{site}/login/", data=form, headers={"Referer": site}
        )
        opener.open(request, timeout=10).read()
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        body = json.dumps(
            {
                "model": "claude-sonnet-5",
                "max_tokens": 512,
                "messages": [{"role": "user", "content": "Hello from the quickstart"}],
            }
        ).encode()
        asked = time.monotonic()
        request = urllib.request.Request(  # noqa: S310 - the loopback http URL built above
            f"{site}/api/v1/w/demo/messages",
            data=body,
            headers={"Content-Type": "application/json", "X-CSRFToken": csrf, "Referer": site},
        )
        answer = json.loads(opener.open(request, timeout=30).read())
        figures["prompt answered in (ms)"] = (time.monotonic() - asked) * 1000
        text = "".join(block.get("text", "") for block in answer["content"])
        print(
            f"Answer: {text!r} — paid with {answer['credential_source']}, "
            f"{answer['credits_charged']} credits charged."
        )
        if answer["credential_source"] != "platform" or not text:
            print("FAILED: the prompt was not answered on AI credits.")
            return 1
        for name, value in figures.items():
            print(f"{name}: {value:,.0f}")
        print("OK: the README's offline section works from a fresh clone.")
        return 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        # The stand-in was started in the background by the block, in the same group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        if args.keep:
            print(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
