"""Tell `make run` when the worker and beat are up, so it can print the login after their
start-up banners (decision 066). Only active when scripts/run_dev.py sets BYOK_DEV_READY_DIR."""

import os
from pathlib import Path

from celery import signals


def _mark(name: str) -> None:
    folder = os.environ.get("BYOK_DEV_READY_DIR")
    if folder:
        Path(folder, name).touch()


@signals.worker_ready.connect
def _worker_ready(**kwargs) -> None:
    _mark("worker")


@signals.beat_init.connect
def _beat_ready(**kwargs) -> None:
    _mark("beat")
