"""The one access helper every workspace view uses."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from .models import Membership, Workspace


def get_workspace_for_member(request: HttpRequest, slug: str, *, admin: bool = False) -> Workspace:
    """Return the workspace if the user belongs to it; 404 for outsiders, 403 for non-admins
    where ``admin`` is asked.

    The membership is attached to the workspace (``workspace.membership``) and the workspace
    to the request (``request.workspace``), for templates and the key banner.
    """
    if not request.user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("workspace")
        .filter(workspace__slug=slug, user=request.user)
        .first()
    )
    if membership is None:
        # Outsiders learn nothing, not even that the workspace exists.
        raise Http404("No such workspace.")
    if admin and not membership.is_admin:
        raise PermissionDenied("Only workspace admins can open this page.")
    workspace = membership.workspace
    workspace.membership = membership
    request.workspace = workspace
    return workspace
