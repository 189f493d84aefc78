"""Refuse to serve with production settings that cannot work.

The ASGI and WSGI entry points call :func:`refuse_to_start_if_misconfigured` before building
the application, so a server started without a usable key ring or secret key exits at once
with one line saying what is wrong, instead of answering ``/healthz`` and failing later with
a 500 on the first saved key. ``manage.py check`` reports the same problems (llm_keys.E001).
"""

from __future__ import annotations

import sys


def production_settings_problems() -> list[str]:
    """Return one sentence per setting that stops this process from serving safely."""
    from django.conf import settings

    from llm_keys.crypto import KeyRing, KeyRingError

    problems = []
    # getattr, not settings.SECRET_KEY: Django's attribute access raises on an empty one,
    # with a traceback instead of a sentence.
    if not (settings._wrapped if settings.configured else _load(settings)).SECRET_KEY:
        problems.append(
            "DJANGO_SECRET_KEY is not set: set it to a long random value (not in DEBUG, "
            "there is no default)."
        )
    ring = settings.LLM_KEY_ENCRYPTION_KEYS
    if ring or not settings.DEBUG:
        try:
            KeyRing.parse(ring)
        except KeyRingError as exc:
            problems.append(str(exc))
    return problems


def _load(settings):
    settings._setup()
    return settings._wrapped


def refuse_to_start_if_misconfigured() -> None:
    """Exit the process with one clear line on stderr when the settings cannot serve."""
    problems = production_settings_problems()
    if problems:
        sys.stderr.write("Refusing to start: " + " ".join(problems) + "\n")
        sys.stderr.flush()
        raise SystemExit(1)


if __name__ == "__main__":
    # `python -m config.checks`: the same refusal for a server that imports the application
    # in its worker processes only (run it first in `make serve`).
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    refuse_to_start_if_misconfigured()
