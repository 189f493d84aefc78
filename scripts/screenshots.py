"""Screenshots of every page and state at 1280 and 390 px, against the Anthropic stand-in.

    .venv/bin/python scripts/screenshots.py [OUTPUT_DIR]     (or: make screenshots)

Runs the browser walk of the test suite in Debian's Chromium (CHROMIUM_PATH for another):
the accessibility audit visits every page as a workspace admin, a member, an anonymous
visitor and a support agent, in each state (no key, valid, unverified, undecryptable and
invalid key, a refused form, a streamed answer, the admin's lists and forms), and the table
walk adds pages full of rows. Each page is saved as <name>-desktop.png (1280 px) and
<name>-phone.png (390 px) under OUTPUT_DIR/pages, the tables at 1280/390/320 px under
OUTPUT_DIR/tables. The site runs on a throwaway test database with the stand-in answering
for Anthropic: nothing needs to be running first, and no real key is used.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WALKS = ["tests/browser/test_accessibility_audit.py", "tests/browser/test_tables_fit.py"]


def main() -> int:
    output = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "test-output" / "screens")
    output = output.resolve()
    env = {**os.environ, "TEST_OUTPUT_DIR": str(output)}
    run = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *WALKS],
        cwd=ROOT,
        env=env,
    )
    shots = sorted(output.rglob("*.png"))
    print(f"{len(shots)} screenshots under {output}")
    if run.returncode != 0:
        print("Some pages failed their checks (above); the screenshots taken are kept.")
    return 0 if shots else 1


if __name__ == "__main__":
    sys.exit(main())
