import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from workspaces.services import workspace_create


class Command(BaseCommand):
    help = "Create a workspace and its first admin (an existing user, or a new one)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin", required=True, metavar="EMAIL")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the new admin's password from standard input.",
        )

    def handle(self, *args, slug, name, admin, password_stdin, **options):
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin was given but standard input was empty.")
        try:
            workspace = workspace_create(
                slug=slug, name=name, admin_email=admin, admin_password=password
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            f"Created workspace '{workspace.slug}' with admin {admin.strip().lower()}."
        )
