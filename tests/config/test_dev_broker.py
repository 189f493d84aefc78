"""The development broker (make run's embedded one): many processes putting while a worker
takes, and every message arrives once and whole (decision 131)."""

import multiprocessing
import os
import time
from pathlib import Path

import pytest
from kombu import Connection

TRANSPORT = os.environ.get("DEV_BROKER_TEST_TRANSPORT", "config.dev_broker:Transport")
PRODUCERS = 4
MESSAGES = 100
# Large enough that writing one takes long enough for a consumer to list the folder meanwhile.
BLOB = "x" * 300_000


def _options(folder: str) -> dict:
    return {"data_folder_in": folder, "data_folder_out": folder, "control_folder": folder}


def _produce(folder: str, producer: int) -> None:
    with Connection(transport=TRANSPORT, transport_options=_options(folder)) as connection:
        queue = connection.SimpleQueue("tasks")
        for n in range(MESSAGES):
            queue.put({"id": f"{producer}-{n}", "blob": BLOB})
        queue.close()


@pytest.fixture(autouse=True)
def _importable_config(monkeypatch):
    """Spawned producers import the transport by name, from the project's root."""
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.getenv("PYTHONPATH")])))


def test_concurrent_puts_and_gets_lose_and_corrupt_nothing(tmp_path):
    folder = str(tmp_path)
    context = multiprocessing.get_context("spawn")
    producers = [context.Process(target=_produce, args=(folder, p)) for p in range(PRODUCERS)]
    received: list[str] = []
    errors: list[str] = []
    with Connection(transport=TRANSPORT, transport_options=_options(folder)) as connection:
        queue = connection.SimpleQueue("tasks")
        for process in producers:
            process.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                message = queue.get(block=True, timeout=0.01)
            except queue.Empty:
                if not any(p.is_alive() for p in producers) and queue.qsize() == 0:
                    break
                continue
            except ValueError as exc:  # what killed the worker: JSONDecodeError, a torn file
                errors.append(repr(exc)[:120])
                continue
            assert message.payload["blob"] == BLOB
            received.append(message.payload["id"])
            message.ack()
        queue.close()
    for process in producers:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert errors == []
    assert len(received) == len(set(received)) == PRODUCERS * MESSAGES
