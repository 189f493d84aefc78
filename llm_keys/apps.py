from django.apps import AppConfig


class LLMKeysConfig(AppConfig):
    name = "llm_keys"
    verbose_name = "LLM keys"

    def ready(self) -> None:
        import sys

        from . import checks  # noqa: F401 - registers the system checks
        from .logging import redacting_excepthook

        # An uncaught exception (a command's crash) is printed by Python, not by logging.
        if sys.excepthook is sys.__excepthook__:
            sys.excepthook = redacting_excepthook
