"""Django's database sessions, loaded together with what the request needs next.

Every authenticated request loads its session, then its user, and every workspace request
then its membership of the workspace (with the workspace's key row). Each was a database
round trip, and after the session the rest only depend on it: so the session's load brings
them along, in one fixed statement (``config.db``):

- the session row (``UserSession``: Django's, plus the user's id as a column, kept from the
  session's data on every save) and the user row it names;
- when the view is a workspace's (``expect_workspace``, called by
  ``workspaces.auth.AuthenticationMiddleware`` with the URL's ``slug``), the user's
  membership of that workspace, the workspace and its Anthropic key row.

What was brought along is only handed out for the same user: the user to
``EmailBackend.get_user`` (Django's ``get_user`` still checks the session's auth hash), the
member context to ``workspaces.access.get_workspace_for_member``. Everything else (save,
create, delete, expiry, the cookie) is Django's ``db`` backend unchanged.
"""

import functools

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection
from django.utils import timezone

from config.db import columns, concrete_field_names, fetch_one, instance_from_row

_SESSION_FIELDS = ("session_key", "session_data", "expire_date", "user_id")


@functools.cache
def _load_sql(vendor: str, with_workspace: bool) -> tuple[str, tuple[str, ...]]:
    from llm_keys.models import LLMKey

    from .access import member_context_columns
    from .models import Membership, UserSession, Workspace

    quote = connection.ops.quote_name
    user_model = get_user_model()
    user_fields = concrete_field_names(user_model)
    select = [
        columns(UserSession, _SESSION_FIELDS, alias="s"),
        columns(user_model, user_fields, alias="u"),
    ]
    joins = [
        f"LEFT JOIN {quote(user_model._meta.db_table)} u "
        f"ON u.{quote(user_model._meta.pk.column)} = s.user_id"
    ]
    if with_workspace:
        select.append(member_context_columns(membership="m", workspace="w", key="k"))
        joins += [
            f"LEFT JOIN {quote(Workspace._meta.db_table)} w ON w.slug = %s",
            f"LEFT JOIN {quote(Membership._meta.db_table)} m "
            "ON m.workspace_id = w.id AND m.user_id = s.user_id",
            f"LEFT JOIN {quote(LLMKey._meta.db_table)} k "
            "ON k.workspace_id = m.workspace_id AND k.provider = %s",
        ]
    sql = (
        f"SELECT {', '.join(select)} FROM {quote(UserSession._meta.db_table)} s "  # noqa: S608
        f"{' '.join(joins)} WHERE s.session_key = %s AND s.expire_date > %s"
    )
    return sql, user_fields


class SessionStore(DatabaseSessionStore):
    def __init__(self, session_key=None):
        super().__init__(session_key)
        self._workspace_slug = None
        self._forget_loaded_rows()

    def _forget_loaded_rows(self) -> None:
        self._loaded_user_id = None
        self._loaded_user = None
        self._loaded_member_row = None

    def flush(self):
        """Django's flush (logout): the rows read with the ended session go with it."""
        super().flush()
        self._forget_loaded_rows()

    @classmethod
    def get_model_class(cls):
        from .models import UserSession

        return UserSession

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        user_id = data.get(SESSION_KEY)
        instance.user_id = None if user_id is None else _user_pk(user_id)
        return instance

    def expect_workspace(self, slug: str) -> None:
        """Have the session's load bring along the user's membership of this workspace."""
        self._workspace_slug = slug

    def _loaded_for(self, user_id) -> bool:
        """Whether the session's load read the rows of this user."""
        return self._loaded_user_id is not None and _user_pk(user_id) == self._loaded_user_id

    def user_loaded_with_session(self, user_id):
        """``(True, user or None)`` if the session's load read this user's row, else
        ``(False, None)``."""
        if not self._loaded_for(user_id):
            return False, None
        return True, self._loaded_user

    def member_row_loaded_with_session(self, slug: str, user_id) -> tuple | None:
        """The member-context row the session's load read for this workspace and user (all
        nulls for an outsider), or None if it read none."""
        if self._loaded_member_row is None or self._loaded_member_row[0] != slug:
            return None
        return self._loaded_member_row[1] if self._loaded_for(user_id) else None

    def _get_session_from_db(self):
        from llm_keys.models import Provider

        slug = self._workspace_slug
        sql, user_fields = _load_sql(connection.vendor, slug is not None)
        params = [slug, Provider.ANTHROPIC] if slug is not None else []
        params += [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())]
        row = fetch_one(sql, params, read_only=True)
        if row is None:
            # As Django's backend does: a missing or expired session starts a new one.
            self._session_key = None
            return None
        split = len(_SESSION_FIELDS)
        session = instance_from_row(self.model, _SESSION_FIELDS, row[:split])
        user_values = row[split : split + len(user_fields)]
        self._loaded_user_id = session.user_id
        if session.user_id is not None and user_values[0] is not None:
            self._loaded_user = instance_from_row(get_user_model(), user_fields, user_values)
        if slug is not None:
            self._loaded_member_row = (slug, row[split + len(user_fields) :])
        return session


def _user_pk(user_id):
    return get_user_model()._meta.pk.to_python(user_id)
