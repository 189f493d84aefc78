"""Who may open a workspace's pages: the rule every workspace view goes through."""

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from .models import Membership


def get_membership(
    request: HttpRequest,
    slug: str,
    *,
    admin: bool = False,
    queryset: QuerySet[Membership] | None = None,
) -> Membership:
    """Return the user's membership of the workspace, with the workspace; 404 for outsiders
    and anonymous users, 403 for members where ``admin`` is asked.

    ``queryset`` lets an upper layer load more in the same statement (llm_keys.access).
    """
    user = request.user
    if not user.is_authenticated:
        raise Http404("No such workspace.")
    if queryset is None:
        queryset = Membership.objects.select_related("workspace")
    membership = queryset.filter(workspace__slug=slug, user=user).first()
    if membership is None:
        # Outsiders learn nothing, not even that the workspace exists.
        raise Http404("No such workspace.")
    if admin and not membership.is_admin:
        raise PermissionDenied("Only workspace admins can open this page.")
    return membership
