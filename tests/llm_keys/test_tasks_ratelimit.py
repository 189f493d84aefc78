"""The key-check rate limit holds across processes: two OS processes share one schedule."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from llm_keys.ratelimit import SCHEDULE_SHARE
from tests.windows import max_in_window

ROOT = Path(__file__).resolve().parents[2]
# Parallel runs on one machine each need their own Redis database (TEST_REDIS_URL).
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
PER_MINUTE = 1200  # one permit every 50 ms
PERMITS_EACH = 15

# Each child takes permits from the limiter it is given and prints when it got them.
CHILD = """
import json, sys, time
from pathlib import Path
from llm_keys.ratelimit import FileRateLimiter, RedisRateLimiter
kind, where, name, rate, count = sys.argv[1:6]
if kind == "redis":
    limiter = RedisRateLimiter(url=where, name=name, per_minute=int(rate))
else:
    limiter = FileRateLimiter(directory=Path(where), name=name, per_minute=int(rate))
print("ready", flush=True)
sys.stdin.readline()
times = []
for _ in range(int(count)):
    wait = limiter.reserve()
    # The slot the limiter granted, not when the sleep woke: a busy machine wakes a sleeper
    # late, which would bunch permits in the record that were apart in the schedule.
    times.append(time.time() + max(wait, 0.0))
    if wait > 0:
        time.sleep(wait)
print(json.dumps(times), flush=True)
"""


def _run_two_processes(kind: str, where: str, names: tuple[str, str]) -> list[float]:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, kind, where, name, str(PER_MINUTE), str(PERMITS_EACH)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    for child in children:  # start both at once
        child.stdin.write("go\n")
        child.stdin.flush()
    times = []
    for child in children:
        out, _ = child.communicate(timeout=30)
        times += json.loads(out)
    return sorted(times)


def _assert_rate_held(times: list[float]) -> None:
    interval = 60 / PER_MINUTE
    assert len(times) == 2 * PERMITS_EACH
    # Spaced with a margin below the limit (SCHEDULE_SHARE), less 5 % for timer jitter.
    assert SCHEDULE_SHARE <= 0.9
    assert times[-1] - times[0] >= (len(times) - 1) * interval * 1.05
    # In any half second at most ten permits (plus one for the window's edge).
    assert max_in_window(times, 0.5) <= 0.5 / interval + 1


def _assert_rate_doubled(times: list[float]) -> None:
    interval = 60 / PER_MINUTE
    assert max_in_window(times, 0.5) > 0.5 / interval + 2


def test_file_limiter_is_shared_by_two_processes(tmp_path):
    times = _run_two_processes("file", str(tmp_path), ("checks", "checks"))
    _assert_rate_held(times)


def test_file_limiters_with_different_names_do_not_share(tmp_path):
    """The control: two separate schedules let twice the rate through, so the test above
    would catch a limiter that is only per process."""
    times = _run_two_processes("file", str(tmp_path), ("checks-a", "checks-b"))
    _assert_rate_doubled(times)


@pytest.fixture
def redis_db():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("needs Redis on 127.0.0.1:6379")
    client.delete("byok:ratelimit:test-checks")
    yield REDIS_URL
    client.delete("byok:ratelimit:test-checks")


def test_redis_limiter_is_shared_by_two_processes(redis_db):
    times = _run_two_processes("redis", redis_db, ("test-checks", "test-checks"))
    _assert_rate_held(times)
