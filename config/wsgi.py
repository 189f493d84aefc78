"""The WSGI entry point: checks the settings first, then builds Django's application."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.checks import refuse_to_start_if_misconfigured

refuse_to_start_if_misconfigured()
application = get_wsgi_application()
