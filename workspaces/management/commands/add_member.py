import sys

from django.core.management.base import BaseCommand, CommandError

from workspaces.models import Membership
from workspaces.services import AccountError, member_add

from ._password import read_password


class Command(BaseCommand):
    help = (
        "Add a person to a workspace as admin or member (creating the account if needed), "
        "or change their role."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=Membership.Role.values)
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read a new account's password from standard input (first line).",
        )

    def handle(self, *args, slug, email, role, password_stdin, **options):
        password = read_password(from_stdin=password_stdin, stdin=sys.stdin)
        try:
            membership, created = member_add(
                workspace_slug=slug, email=email, role=role, password=password
            )
        except AccountError as exc:
            raise CommandError(str(exc)) from None
        account = "new account" if created else "existing account"
        self.stdout.write(
            f"{membership.user.email} ({account}) is now {role} of '{membership.workspace.slug}'."
        )
        if created and password is None:
            self.stdout.write(
                "The account has no password yet: run again with --password-stdin to set one."
            )
