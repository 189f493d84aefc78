"""The one access helper every workspace view uses."""

import functools

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest

from config.db import columns, concrete_field_names, fetch_one, instance_from_row

from .models import Membership, Workspace


@functools.cache
def _member_context_sql(vendor: str) -> tuple[str, tuple[tuple[type, tuple[str, ...]], ...]]:
    """One statement for the membership, the workspace and the workspace's key row.

    Every workspace page and every AI request runs it, so it is written once: compiling it
    through the ORM cost more than running it (config.db). The key row rides along because
    every such request needs it next (the gateway's credentials, the invalid-key banner).
    """
    from llm_keys.models import KEY_USE_FIELDS, LLMKey

    quote = connection.ops.quote_name
    parts = (
        (Membership, concrete_field_names(Membership)),
        (Workspace, concrete_field_names(Workspace)),
        (LLMKey, KEY_USE_FIELDS),
    )
    sql = (
        f"SELECT {columns(Membership, parts[0][1], alias='m')}, "  # noqa: S608
        f"{columns(Workspace, parts[1][1], alias='w')}, "
        f"{columns(LLMKey, parts[2][1], alias='k')} "
        f"FROM {quote(Membership._meta.db_table)} m "
        f"JOIN {quote(Workspace._meta.db_table)} w ON w.id = m.workspace_id "
        f"LEFT JOIN {quote(LLMKey._meta.db_table)} k "
        "ON k.workspace_id = w.id AND k.provider = %s "
        "WHERE w.slug = %s AND m.user_id = %s"
    )
    return sql, parts


def get_workspace_for_member(request: HttpRequest, slug: str, *, admin: bool = False) -> Workspace:
    """Return the workspace if the user belongs to it; 404 for outsiders, 403 for non-admins
    where ``admin`` is asked.

    The membership is attached to the workspace (``workspace.membership``), so is its stored
    Anthropic key or None (``workspace.prefetched_llm_keys``, read by the gateway and the
    banner), and the workspace to the request (``request.workspace``).
    """
    from llm_keys.models import Provider

    if not request.user.is_authenticated:
        raise Http404
    sql, parts = _member_context_sql(connection.vendor)
    row = fetch_one(sql, [Provider.ANTHROPIC, slug, request.user.pk], read_only=True)
    if row is None:
        # Outsiders learn nothing, not even that the workspace exists.
        raise Http404("No such workspace.")
    instances = []
    start = 0
    for model, fields in parts:
        values = row[start : start + len(fields)]
        start += len(fields)
        instances.append(None if values[0] is None else instance_from_row(model, fields, values))
    membership, workspace, llm_key = instances
    membership.workspace = workspace
    membership.user = request.user
    if admin and not membership.is_admin:
        raise PermissionDenied("Only workspace admins can open this page.")
    if llm_key is not None:
        llm_key.workspace = workspace
    workspace.membership = membership
    workspace.prefetched_llm_keys = {Provider.ANTHROPIC: llm_key}
    request.workspace = workspace
    return workspace
