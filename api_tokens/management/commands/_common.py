from django.core.management.base import CommandError

from workspaces.models import Workspace


def workspace_or_error(slug: str) -> Workspace:
    """Return the workspace with this slug, or stop with a one-line error."""
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise CommandError(f"No workspace with slug '{slug}'. List them in the Django admin.")
    return workspace
