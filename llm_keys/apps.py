from django.apps import AppConfig


class LLMKeysConfig(AppConfig):
    name = "llm_keys"
    verbose_name = "LLM keys"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
