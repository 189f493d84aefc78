"""The support console's admin site: Django's, with the index in the order support works."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# Workspaces first (where most questions start), then keys, credits and requests; each app
# under the name support knows it by.
APP_ORDER = ["workspaces", "llm_keys", "credits", "ai_gateway", "api_tokens", "axes", "auth"]
APP_NAMES = {"axes": "Login lockouts"}


class SupportAdminSite(admin.AdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["name"] = APP_NAMES.get(app["app_label"], app["name"])
        rank = {label: n for n, label in enumerate(APP_ORDER)}
        return sorted(apps, key=lambda app: rank.get(app["app_label"], len(rank)))


class SupportAdminConfig(AdminConfig):
    """``django.contrib.admin`` with ``SupportAdminSite`` as ``admin.site`` (Django's
    documented way to replace the default site)."""

    default_site = "config.admin_site.SupportAdminSite"
