from django.core.management.base import BaseCommand, CommandError

from api_tokens.services import Actor, ApiTokenNotFoundError, api_token_revoke

from ._common import workspace_or_error


class Command(BaseCommand):
    help = "Revoke a workspace's live API token by name; requests with it are refused at once."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name")

    def handle(self, *args, slug, name, **options):
        workspace = workspace_or_error(slug)
        try:
            token = api_token_revoke(
                workspace=workspace, name=name, actor=Actor(label="operator (revoke_api_token)")
            )
        except ApiTokenNotFoundError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Revoked API token “{token.name}” ({token.masked}) of workspace '{workspace.slug}'; "
            "requests that use it are refused from now on."
        )
