"""Workspaces, who belongs to them, and the sessions of those who are logged in.

Invariants: a slug is unique; a user holds at most one membership per workspace
(``workspaces_membership_unique``); a role is ``admin`` or ``member``
(``workspaces_membership_role_valid``); a workspace's name is one line
(``workspaces_workspace_name_one_line``): it goes into e-mail subjects, where a line break
would end the header.
"""

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse


def validate_one_line(value: str) -> None:
    if any(ch in value for ch in "\r\n"):
        raise ValidationError(
            "A workspace name is one line: remove the line break.", code="line_break"
        )


class Workspace(models.Model):
    name = models.CharField(max_length=200, validators=[validate_one_line])
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(name__contains="\n") & ~models.Q(name__contains="\r"),
                name="workspaces_workspace_name_one_line",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("workspace_home", args=[self.slug])


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user"], name="workspaces_membership_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["admin", "member"]),
                name="workspaces_membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class UserSession(AbstractBaseSession):
    """Django's database session, with the user it belongs to as a column.

    Deleting a user deletes the user's sessions; the column is written from the session's
    data on every save (``workspaces.sessions``).
    There is no database constraint on it: a session saved for a user deleted a moment
    before must not fail the save (Django's session store would retry a failed create
    forever); such a session simply loads without a user.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="+",
    )

    class Meta(AbstractBaseSession.Meta):
        db_table = "workspaces_session"

    @classmethod
    def get_session_store_class(cls):
        from .sessions import SessionStore

        return SessionStore
