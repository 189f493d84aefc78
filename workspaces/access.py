"""The one access helper every workspace view uses."""

import functools

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest

from config.db import columns, concrete_field_names, fetch_one, instance_from_row

from .models import Membership, Workspace


@functools.cache
def _membership_sql(vendor: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    # Every workspace page and every AI request runs this lookup: it is written once, as
    # the ORM's compilation of it cost more than the query (config.db).
    quote = connection.ops.quote_name
    membership_fields = concrete_field_names(Membership)
    workspace_fields = concrete_field_names(Workspace)
    sql = (
        f"SELECT {columns(Membership, membership_fields, alias='m')}, "  # noqa: S608
        f"{columns(Workspace, workspace_fields, alias='w')} "
        f"FROM {quote(Membership._meta.db_table)} m "
        f"JOIN {quote(Workspace._meta.db_table)} w ON w.id = m.workspace_id "
        "WHERE w.slug = %s AND m.user_id = %s"
    )
    return sql, membership_fields, workspace_fields


def get_workspace_for_member(request: HttpRequest, slug: str, *, admin: bool = False) -> Workspace:
    """Return the workspace if the user belongs to it; 404 for outsiders, 403 for non-admins
    where ``admin`` is asked.

    The membership is attached to the workspace (``workspace.membership``) and the workspace
    to the request (``request.workspace``), for templates and the key banner.
    """
    if not request.user.is_authenticated:
        raise Http404
    sql, membership_fields, workspace_fields = _membership_sql(connection.vendor)
    row = fetch_one(sql, [slug, request.user.pk], read_only=True)
    if row is None:
        # Outsiders learn nothing, not even that the workspace exists.
        raise Http404("No such workspace.")
    split = len(membership_fields)
    membership = instance_from_row(Membership, membership_fields, row[:split])
    workspace = instance_from_row(Workspace, workspace_fields, row[split:])
    membership.workspace = workspace
    membership.user = request.user
    if admin and not membership.is_admin:
        raise PermissionDenied("Only workspace admins can open this page.")
    workspace.membership = membership
    request.workspace = workspace
    return workspace
