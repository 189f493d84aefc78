"""Admin building blocks shared by every app's admin."""

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Rows nobody edits from the admin: no add, change or delete, whatever the permissions."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
