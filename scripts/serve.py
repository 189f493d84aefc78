"""Run the production web server alone: gunicorn with WEB_CONCURRENCY uvicorn workers serving
config.asgi (config/gunicorn.py).

Configured from the environment only (no .env). Refuses to start, with one line saying why,
when a server knob is not a whole number or the production settings fail the startup check
of config/checks.py (an empty or malformed LLM_KEY_ENCRYPTION_KEYS, no DJANGO_SECRET_KEY).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# The knobs config/gunicorn.py reads as numbers (gunicorn itself reads WEB_CONCURRENCY on
# import): a bad one is refused here in one line, not by a traceback from gunicorn.
WHOLE_NUMBER_KNOBS = ("WEB_CONCURRENCY", "PORT", "WEB_GRACEFUL_TIMEOUT", "WEB_KEEPALIVE")


def _knob_refusal() -> str | None:
    """What is wrong with the first server knob that is set but not a positive whole number."""
    for name in WHOLE_NUMBER_KNOBS:
        value = os.environ.get(name)
        if value is not None and not (value.isdigit() and int(value) > 0):
            return f"{name} is {value!r}; set it to a positive whole number or unset it."
    return None


def _refusal() -> str | None:
    """What the one startup check (config.checks) finds wrong with these settings, or None."""
    from config.checks import startup_refusal

    return startup_refusal()


def _per_process_limits_warning() -> str | None:
    """A warning when several workers would each count the API's limits on their own: the
    cache (CACHE_URL, else the broker's Redis) is local memory (decision 126)."""
    from django.conf import settings

    workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
    if workers > 1 and settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        return (
            f"CACHE_URL is local memory: each of the {workers} workers counts the API's "
            "rate and concurrency limits on its own. Set CACHE_URL (or CELERY_BROKER_URL) "
            "to a Redis URL to share them."
        )
    return None


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DJANGO_READ_DOT_ENV"] = "false"
    refusal = _knob_refusal() or _refusal()
    if refusal:
        print(f"make serve: refusing to start: {refusal}", file=sys.stderr)
        return 2
    warning = _per_process_limits_warning()
    if warning:
        print(f"make serve: warning: {warning}", file=sys.stderr)

    # The checks loaded Django into this process; the server starts afresh, configured by
    # config/gunicorn.py from the environment (its knobs are in the README).
    command = [sys.executable, "-m", "gunicorn", "--config=python:config.gunicorn"]
    os.chdir(ROOT)
    os.execv(sys.executable, command)  # noqa: S606 - our own interpreter, fixed arguments
    return 0


if __name__ == "__main__":
    sys.exit(main())
