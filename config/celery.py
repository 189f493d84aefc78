"""The Celery app. Configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("byok")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from config import dev_ready  # noqa: E402, F401 - `make run` waits for its signals


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _redact_worker_logs(logger=None, **kwargs) -> None:
    """Celery's worker and beat replace the root handlers that settings.LOGGING configured,
    and with them the key redaction: put it back on the handlers Celery made."""
    from llm_keys.logging import install_redaction

    if logger is not None:
        install_redaction(logger)


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    """Treat each task as Django treats a request: keep a database connection for
    ``CONN_MAX_AGE`` and health-check it before reuse, instead of opening one per task.

    Celery's Django fixup closes every connection before and after each task unless
    ``CELERY_DB_REUSE_MAX`` is set (settings set it); a new PostgreSQL connection per key
    check cost about 3 ms of CPU between the worker and the server (docs/decisions/034).
    """
    if getattr(getattr(sender, "request", None), "is_eager", False):
        # An eager task runs inside its caller's connection (and a test's transaction).
        return
    from django.db import close_old_connections

    close_old_connections()
