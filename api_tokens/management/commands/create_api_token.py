from django.core.management.base import BaseCommand, CommandError

from api_tokens.services import Actor, ApiTokenNameError, api_token_create

from ._common import workspace_or_error


class Command(BaseCommand):
    help = (
        "Create an API token for a workspace. The token is printed once, alone on the last "
        "line of standard output; only a hash of it is stored."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True, help="What will use the token.")

    def handle(self, *args, slug, name, **options):
        workspace = workspace_or_error(slug)
        try:
            created = api_token_create(
                workspace=workspace, name=name, actor=Actor(label="operator (create_api_token)")
            )
        except ApiTokenNameError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Created API token “{created.token.name}” ({created.token.masked}) for workspace "
            f"'{workspace.slug}'. It is shown only now; store it in a secret store:"
        )
        self.stdout.write(created.raw_token)
