"""A machine without Chromium: `make test` does not error on the browser tests; one line at
the end of the run says how to run them."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_browser_tests_are_left_out_with_one_line_saying_how_to_run_them():
    env = {**os.environ, "CHROMIUM_PATH": str(ROOT / "no-such-chromium")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/browser"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode in (0, 5), out
    assert "error" not in out.lower(), out
    lines = [line for line in out.splitlines() if "Browser tests not run" in line]
    assert len(lines) == 1, out
    assert "apt-get install chromium" in lines[0] and "CHROMIUM_PATH" in lines[0]
