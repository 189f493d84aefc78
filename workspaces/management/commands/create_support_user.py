import sys

from django.core.management.base import BaseCommand, CommandError

from workspaces.services import AccountError, support_user_create

from ._password import read_password


class Command(BaseCommand):
    help = (
        "Create a support account for the Django admin (staff, in the Support group, not a "
        "superuser), or give an existing account support access."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read a new account's password from standard input (first line).",
        )

    def handle(self, *args, email, password_stdin, **options):
        password = read_password(from_stdin=password_stdin, stdin=sys.stdin)
        try:
            user, created = support_user_create(email=email, password=password)
        except AccountError as exc:
            raise CommandError(str(exc)) from None
        what = "Created the support account" if created else "Gave support access to"
        self.stdout.write(f"{what} {user.email}; they log in at /admin/.")
        if created and password is None:
            self.stdout.write(
                "The account has no password yet: run again with --password-stdin to set one."
            )
