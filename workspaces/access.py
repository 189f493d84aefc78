"""The one access helper every workspace view uses."""

import functools

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest

from config.db import columns, concrete_field_names, fetch_one, instance_from_row

from .models import Membership, Workspace


@functools.cache
def member_context_parts() -> tuple[tuple[type, tuple[str, ...]], ...]:
    """What a workspace request needs to know about its workspace, in row order: the
    membership, the workspace and the workspace's Anthropic key row.

    The key row rides along because every such request needs it next (the gateway's
    credentials, the invalid-key banner).
    """
    from llm_keys.models import KEY_USE_FIELDS, LLMKey

    return (
        (Membership, concrete_field_names(Membership)),
        (Workspace, concrete_field_names(Workspace)),
        (LLMKey, KEY_USE_FIELDS),
    )


def member_context_columns(*, membership: str, workspace: str, key: str) -> str:
    """The select list of the member context, from tables aliased as given."""
    aliases = (membership, workspace, key)
    return ", ".join(
        columns(model, fields, alias=alias)
        for (model, fields), alias in zip(member_context_parts(), aliases, strict=True)
    )


@functools.cache
def _member_context_sql(vendor: str) -> str:
    """One statement for the member context, written once: compiling it through the ORM cost
    more than running it (config.db). A request whose session load already brought it along
    (workspaces.sessions) does not run it."""
    from llm_keys.models import LLMKey

    quote = connection.ops.quote_name
    return (
        f"SELECT {member_context_columns(membership='m', workspace='w', key='k')} "  # noqa: S608
        f"FROM {quote(Membership._meta.db_table)} m "
        f"JOIN {quote(Workspace._meta.db_table)} w ON w.id = m.workspace_id "
        f"LEFT JOIN {quote(LLMKey._meta.db_table)} k "
        "ON k.workspace_id = w.id AND k.provider = %s "
        "WHERE w.slug = %s AND m.user_id = %s"
    )


def workspace_from_member_row(row: tuple, user) -> Workspace | None:
    """Build the workspace, its membership and its key row from a member-context row; None
    if the row holds no membership (the user is an outsider)."""
    from llm_keys.models import Provider

    instances = []
    start = 0
    for model, fields in member_context_parts():
        values = row[start : start + len(fields)]
        start += len(fields)
        instances.append(None if values[0] is None else instance_from_row(model, fields, values))
    membership, workspace, llm_key = instances
    if membership is None:
        return None
    membership.workspace = workspace
    membership.user = user
    if llm_key is not None:
        llm_key.workspace = workspace
    workspace.membership = membership
    workspace.prefetched_llm_keys = {Provider.ANTHROPIC: llm_key}
    return workspace


def get_workspace_for_member(request: HttpRequest, slug: str, *, admin: bool = False) -> Workspace:
    """Return the workspace if the user belongs to it; 404 for outsiders, 403 for non-admins
    where ``admin`` is asked.

    The membership is attached to the workspace (``workspace.membership``), so is its stored
    Anthropic key or None (``workspace.prefetched_llm_keys``, read by the gateway and the
    banner), and the workspace to the request (``request.workspace``).
    """
    from llm_keys.models import Provider

    user = request.user
    if not user.is_authenticated:
        raise Http404
    loaded = getattr(getattr(request, "session", None), "member_row_loaded_with_session", None)
    row = loaded(slug, user.pk) if loaded is not None else None
    if row is None:
        row = fetch_one(
            _member_context_sql(connection.vendor),
            [Provider.ANTHROPIC, slug, user.pk],
            read_only=True,
        )
    workspace = None if row is None else workspace_from_member_row(row, user)
    if workspace is None:
        # Outsiders learn nothing, not even that the workspace exists.
        raise Http404("No such workspace.")
    if admin and not workspace.membership.is_admin:
        raise PermissionDenied("Only workspace admins can open this page.")
    request.workspace = workspace
    return workspace
