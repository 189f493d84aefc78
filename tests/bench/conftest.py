"""The benches' stand-in, started for a test."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "bench" / "async_standin.py"


@pytest.fixture
def standin_url():
    process = subprocess.Popen(
        [sys.executable, str(STANDIN), "--events", "5", "--seconds", "0.5", "--latency", "0.05"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("listening http://127.0.0.1:")
        yield line.split(" ", 1)[1]
    finally:
        process.terminate()
        process.wait(timeout=10)
