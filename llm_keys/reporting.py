"""Error reports that never carry a provider key.

Django hides variables named by ``@sensitive_variables``; a key can still sit in a frame
that was not decorated (an SDK frame, a helper's argument). This filter also blanks any
frame variable or POST value whose text looks like an Anthropic key, in DEBUG as well.
"""

from django.views.debug import SafeExceptionReporterFilter

from .logging import KEY_PATTERN


def _looks_secret(value) -> bool:
    try:
        return bool(KEY_PATTERN.search(repr(value)))
    except Exception:  # noqa: BLE001 - a repr that fails is hidden rather than shown
        return True


class KeyRedactingExceptionReporterFilter(SafeExceptionReporterFilter):
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
