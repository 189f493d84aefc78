"""Run the development web server (and, with it, whatever else `make run` starts).

Every process is stopped together on Ctrl-C.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def main() -> int:
    port = os.environ.get("PORT", "8000")
    commands = {
        "web": [PY, "manage.py", "runserver", f"127.0.0.1:{port}"],
    }
    processes = {name: subprocess.Popen(cmd, cwd=ROOT) for name, cmd in commands.items()}  # noqa: S603
    try:
        while True:
            for name, proc in processes.items():
                code = proc.poll()
                if code is not None:
                    print(f"{name} exited with {code}; stopping the rest.", file=sys.stderr)
                    return code or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
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
