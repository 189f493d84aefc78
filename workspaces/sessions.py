"""Django's database sessions, loaded with one fixed statement.

Every authenticated request loads its session. Building and compiling that lookup through the
ORM costs several times what PostgreSQL takes to answer it, so the load runs a statement
written once (``config.db``); everything else (save, create, delete, expiry, the cookie) is
Django's ``db`` backend unchanged.
"""

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection
from django.utils import timezone

from config.db import select_instance

_FIELDS = ("session_key", "session_data", "expire_date")


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self):
        session = select_instance(
            self.model,
            _FIELDS,
            "session_key = %s AND expire_date > %s",
            [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        if session is None:
            # As Django's backend does: a missing or expired session starts a new one.
            self._session_key = None
        return session
