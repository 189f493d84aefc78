"""The ASGI entry point: checks the settings first, then builds Django's application."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.checks import refuse_to_start_if_misconfigured

refuse_to_start_if_misconfigured()
application = get_asgi_application()
