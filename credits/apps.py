from django.apps import AppConfig


class CreditsConfig(AppConfig):
    name = "credits"
    verbose_name = "AI credits"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
