"""The ASGI entry point: checks the settings first, then builds Django's application."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.checks import refuse_to_start_if_misconfigured

refuse_to_start_if_misconfigured()
django_application = get_asgi_application()

from providers import load_adapters  # noqa: E402 - needs the settings loaded

load_adapters()  # their SDKs' imports, here rather than in the first AI request

from config.request_guard import RequestGuard  # noqa: E402 - needs the settings loaded

# Body size and credentials are checked before Django reads a body (config/request_guard).
application = RequestGuard(django_application)
