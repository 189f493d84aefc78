from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import transaction

from .echo import shown
from .models import Membership, Workspace


def user_get_or_create(*, email: str, password: str | None = None) -> tuple[AbstractBaseUser, bool]:
    """Return the user with this e-mail, creating it (with this password) if there is none."""
    email = email.strip().lower()
    validate_email(email)
    user_model = get_user_model()
    user = user_model._default_manager.filter(email__iexact=email).first()
    if user is not None:
        return user, False
    user = user_model(username=email, email=email)
    if password:
        validate_password(password, user=user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user, True


@transaction.atomic
def workspace_create(
    *, slug: str, name: str, admin_email: str, admin_password: str | None = None
) -> Workspace:
    """Create a workspace with its first admin (an existing user, or a new one).

    All or nothing: a refused admin (a bad e-mail, a password the validators reject) leaves
    no workspace behind.
    """
    slug = slug.strip().lower()
    validate_slug(slug)
    if Workspace.objects.filter(slug=slug).exists():
        raise ValidationError(f"A workspace with the slug {shown(slug)} already exists.")
    # Only the ends are stripped: a line break inside is refused, not silently joined.
    workspace = Workspace(slug=slug, name=name.strip(" \t"))
    workspace.full_clean()
    workspace.save()
    user, _ = user_get_or_create(email=admin_email, password=admin_password)
    Membership.objects.create(workspace=workspace, user=user, role=Membership.Role.ADMIN)
    return workspace


def membership_add(*, workspace: Workspace, user, role: str = Membership.Role.MEMBER) -> Membership:
    """Add a user to a workspace with a role (or change the role of a member)."""
    membership, _ = Membership.objects.update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    return membership
