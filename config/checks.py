"""The one startup check: production settings that cannot serve stop the process at once.

The problems are Django system checks tagged ``security``: ``config.E001`` (no secret key,
below, registered where this module is imported) and ``llm_keys.E001`` (a missing or
malformed key ring; in DEBUG a missing ring is only ``llm_keys.W001``, and ``manage.py
check`` lists it too). :func:`startup_refusal` turns the
serious ones into one line for every way a server starts: the ASGI and WSGI entry points
call :func:`refuse_to_start_if_misconfigured` at import, before building the application;
``python -m config.checks`` runs it alone; ``make serve`` (``scripts/serve.py``) asks it
before starting gunicorn. A server that answered ``/healthz`` and then gave a 500 on the
first saved key is what this prevents (decision 053).
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

SECRET_KEY_MISSING = (
    "DJANGO_SECRET_KEY is not set: set it to a long random value (not in DEBUG, there is no "
    "default)."
)


@checks.register(checks.Tags.security)
def check_secret_key(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """An empty SECRET_KEY: Django raises on first use, deep inside a request."""
    try:
        present = bool(settings.SECRET_KEY)
    except ImproperlyConfigured:
        present = False
    return [] if present else [checks.Error(SECRET_KEY_MISSING, id="config.E001")]


def startup_refusal() -> str | None:
    """Return the serious security-check messages of these settings in one line, or None."""
    import django

    try:
        django.setup()
        messages = checks.run_checks(tags=[checks.Tags.security])
    except ImproperlyConfigured as exc:
        return str(exc).replace("\n", " ")
    # dict.fromkeys: `python -m config.checks` registers this module's check a second time.
    serious = list(dict.fromkeys(m.msg for m in messages if m.is_serious()))
    return " ".join(serious).replace("\n", " ") if serious else None


def refuse_to_start_if_misconfigured() -> None:
    """Exit the process with one clear line on stderr when the settings cannot serve."""
    refusal = startup_refusal()
    if refusal:
        sys.stderr.write(f"Refusing to start: {refusal}\n")
        sys.stderr.flush()
        raise SystemExit(1)


if __name__ == "__main__":
    # `python -m config.checks`: the same refusal for a server that imports the application
    # in its worker processes only.
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    refuse_to_start_if_misconfigured()
