from llm_keys.models import Provider
from llm_keys.services import Actor, llm_key_remove

from ._operator import OperatorCommand, key_ring_or_error, provider_or_error, workspace_or_error


class Command(OperatorCommand):
    help = "Delete a workspace's provider key; its AI requests go back to AI credits."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--provider", default=Provider.ANTHROPIC)

    def handle(self, *args, slug, provider, **options):
        key_ring_or_error()
        provider = provider_or_error(provider)
        workspace = workspace_or_error(slug)
        removed = llm_key_remove(
            workspace=workspace, provider=provider, actor=Actor(label="operator (remove_llm_key)")
        )
        if removed:
            self.stdout.write(
                f"Removed the {provider} key of workspace '{workspace.slug}'; "
                "its AI requests use AI credits again."
            )
        else:
            self.stdout.write(
                f"Workspace '{workspace.slug}' has no {provider} key; nothing was removed."
            )
