from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import transaction

from .echo import shown
from .models import Membership, Workspace


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change (a key, a token): a user, or a label for the system, an operator or
    support, as audit events record it."""

    user: object | None = None
    label: str = ""


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


SUPPORT_GROUP = "Support"


class AccountError(ValueError):
    """An account cannot be created or changed as asked (the message says why)."""


def _checked_password(password: str, *, email: str) -> str:
    """Run the project's password validators; one sentence per problem, never the password."""
    user_model = get_user_model()
    try:
        validate_password(password, user=user_model(username=email, email=email))
    except ValidationError as exc:
        raise AccountError(" ".join(exc.messages)) from None
    return password


def _new_or_existing_user(*, email: str, password: str | None) -> tuple[AbstractBaseUser, bool]:
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise AccountError(f"'{email}' is not an e-mail address.") from None
    existing = get_user_model()._default_manager.filter(email__iexact=email).first()
    if password is not None:
        if existing is not None and existing.has_usable_password():
            raise AccountError(
                f"{email} already has an account with a password; it is left as it is. "
                "Run again without --password-stdin."
            )
        _checked_password(password, email=email)
    if existing is None:
        return user_get_or_create(email=email, password=password)
    if password is not None:
        existing.set_password(password)
        existing.save(update_fields=["password"])
    return existing, False


@transaction.atomic
def member_add(
    *, workspace_slug: str, email: str, role: str, password: str | None = None
) -> tuple[Membership, bool]:
    """Add a person (an existing account, or a new one) to a workspace with a role."""
    if role not in Membership.Role.values:
        raise AccountError(f"The role must be one of: {', '.join(Membership.Role.values)}.")
    workspace = Workspace.objects.filter(slug=workspace_slug.strip().lower()).first()
    if workspace is None:
        raise AccountError(f"There is no workspace with the slug '{workspace_slug}'.")
    user, created = _new_or_existing_user(email=email, password=password)
    return membership_add(workspace=workspace, user=user, role=role), created


@transaction.atomic
def support_user_create(
    *, email: str, password: str | None = None
) -> tuple[AbstractBaseUser, bool]:
    """Make a support account: staff (not superuser) in the Support group."""
    group = Group.objects.filter(name=SUPPORT_GROUP).first()
    if group is None:
        raise AccountError(
            f"The '{SUPPORT_GROUP}' group is missing; run 'manage.py migrate' first."
        )
    user, created = _new_or_existing_user(email=email, password=password)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.groups.add(group)
    return user, created
