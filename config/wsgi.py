"""The WSGI entry point: checks the settings first, then builds Django's application."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.checks import refuse_to_start_if_misconfigured

refuse_to_start_if_misconfigured()
application = get_wsgi_application()

from providers import load_adapters  # noqa: E402 - needs the settings loaded

load_adapters()  # their SDKs' imports, here rather than in the first AI request
