"""Error reports that never carry a provider key or an infrastructure password.

Django hides variables named by ``@sensitive_variables``; a key can still sit in a frame
that was not decorated (an SDK frame, a helper's argument), in the exception's own text, or
in a setting or environment variable shown on the DEBUG page. The filter blanks any frame
variable, POST value, setting or request header whose text looks like a provider key and
masks the password of every URL (``CELERY_BROKER_URL``, ``DATABASE_URL``, ``EMAIL_URL``, a
cache or rate-limit URL), in DEBUG as well. The reporter redacts the rendered page and the
e-mailed text as a whole, so the exception's message and traceback are covered too.
"""

import re

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from .logging import KEY_PATTERN, redact

# scheme://user:password@host → scheme://user:********@host (the user may be empty).
URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^@\s/]+(?=@)")


def mask_url_passwords(text: str) -> str:
    return URL_PASSWORD.sub(r"\g<head>********", text)


def _looks_secret(value) -> bool:
    try:
        return bool(KEY_PATTERN.search(repr(value)))
    except Exception:  # noqa: BLE001 - a repr that fails is hidden rather than shown
        return True


class KeyRedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if type(cleansed) is str:  # not a lazy object (whose text is computed later)
            if _looks_secret(cleansed):
                return self.cleansed_substitute
            return mask_url_passwords(cleansed)
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, self.cleansed_substitute if _looks_secret(value) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def get_post_parameters(self, request):
        parameters = super().get_post_parameters(request)
        if not parameters:
            return parameters
        cleansed = parameters.copy()
        for name in cleansed:
            if any(_looks_secret(v) for v in parameters.getlist(name)):
                cleansed[name] = self.cleansed_substitute
        return cleansed

    def get_cleansed_multivaluedict(self, request, multivaluedict):
        cleansed = super().get_cleansed_multivaluedict(request, multivaluedict).copy()
        for name in cleansed:
            if any(_looks_secret(v) for v in cleansed.getlist(name)):
                cleansed[name] = self.cleansed_substitute
        return cleansed


class KeyRedactingExceptionReporter(ExceptionReporter):
    """Django's reporter; the whole page and text redacted once rendered."""

    def get_traceback_html(self):
        return mask_url_passwords(redact(str(super().get_traceback_html())))

    def get_traceback_text(self):
        return mask_url_passwords(redact(str(super().get_traceback_text())))
